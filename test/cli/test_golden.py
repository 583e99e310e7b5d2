"""Every golden case (scripts/golden-hashes) writes the bytes recorded in test/golden/hashes.json:
a refactoring that changes an output, or a report beyond its timings, fails here, naming the model,
config and file. Re-record only for an intended change of output, and say why in the commit."""

import importlib.machinery
import importlib.util
import json
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
RECORDED = json.loads((ROOT / "test/golden/hashes.json").read_text())


def _load_script():
    loader = importlib.machinery.SourceFileLoader("golden_hashes", str(ROOT / "scripts/golden-hashes"))
    spec = importlib.util.spec_from_loader("golden_hashes", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


golden = _load_script()


@pytest.fixture(scope="module")
def computed(palettize_bin):
    shared = pathlib.Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
    return golden.compute(pathlib.Path(palettize_bin), shared)


def test_every_case_is_recorded():
    assert sorted(name for name, _, _ in golden.cases()) == sorted(RECORDED)


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_output_matches_recorded_hashes(computed, name):
    lines = golden.differences(name, RECORDED[name], computed[name])
    assert not lines, "\n".join(lines)
