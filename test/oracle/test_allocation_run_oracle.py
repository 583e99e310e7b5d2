"""`palettize compress --target-bpw / --min-snr` end to end (issue 14), checked by coremltools.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize SHARED_MODELS=../shared/models \\
        .venv/bin/python -m pytest test/oracle/test_allocation_run_oracle.py

On shared models: coremltools loads the allocated output and decompresses every allocated weight
(decompress_weights) to values whose SSE against the original is the report's, each from a table
of at most 2^nbits entries of the chosen nbits; a weight kept uncompressed is the original; the
achieved bytes keep the budget; coremltools' OptimizationConfig.from_yaml loads the emitted
config, and `compress --config` with it writes the same package byte for byte.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import compress_oracle as co
from oracle_conftest import SUBPROCESS_TIMEOUT, hash_tree

SHARED = Path(os.environ.get("SHARED_MODELS", Path(__file__).resolve().parents[3] / "shared" / "models"))


def palettize(*args):
    proc = subprocess.run([os.environ["PALETTIZE_BIN"], *map(str, args)], capture_output=True, text=True,
                          timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.mark.parametrize("model, flags", [
    ("mnist", ["--target-bpw", "3.5"]),
    ("keras_video", ["--target-bpw", "2.6"]),
    ("keras_video", ["--min-snr", "25"]),
    ("keras_video", ["--target-size", "150K", "--minimum-deployment-target", "iOS18"]),
])
def test_output_decompresses_to_the_reported_allocation(model, flags, tmp_path):
    import coremltools.optimize.coreml as cto

    src = SHARED / f"{model}.mlpackage"
    out, report, emitted = tmp_path / "out.mlpackage", tmp_path / "r.json", tmp_path / "c.yaml"
    palettize("compress", src, "-o", out, "--report", report, "--emit-config", emitted, *flags)
    r = json.loads(report.read_text())
    a = r["allocation"]
    assert a["bytes"] == sum(w["candidates"][w["chosen"]]["bytes"] for w in a["weights"])
    if a["objective"] == "target_bpw":
        assert a["bytes"] <= a["budget"] * a["elements"] / 8
    elif a["objective"] == "target_size":
        assert a["bytes"] <= a["budget"]

    orig_idx, _ = co.const_index(src)
    ct_idx, how = co.decompressed_index(out, tmp_path)
    entries = {w["name"]: w for w in r["weights"]}
    nbits_seen = set()
    for w in a["weights"]:
        chosen = w["candidates"][w["chosen"]]
        entry = entries[w["name"]]
        orig = orig_idx.get("", "main", w["name"])
        _, dec = ct_idx.find({"program": "", "function": "main", "name": w["name"], "consumers": []})
        assert dec is not None, f"{w['name']}: not in coremltools' decompression ({how})"
        if chosen["nbits"] is None:
            assert entry["status"] != "palettized"
            assert np.array_equal(dec, orig)
            continue
        nbits_seen.add(chosen["nbits"])
        assert entry["nbits"] == chosen["nbits"]
        assert entry["bytes_after"] == chosen["bytes"]
        sse, _ = co.sse_and_max(dec, orig)
        assert abs(sse - chosen["sse"]) <= 1e-9 * max(sse, 1e-300), w["name"]
        assert len(np.unique(dec)) <= 2 ** chosen["nbits"]
    assert nbits_seen, "the allocation palettized nothing"

    cto.OptimizationConfig.from_yaml(str(emitted))
    again = tmp_path / "again.mlpackage"
    forced = "--minimum-deployment-target"
    target = flags[flags.index(forced):][:2] if forced in flags else []
    palettize("compress", src, "-o", again, "--config", emitted, *target)
    assert hash_tree(again) == hash_tree(out)
