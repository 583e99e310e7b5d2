"""palettize eval on the shared models: they run with generated inputs, reproducibly, with finite
outputs; the fp16 and fp32 builds of one model agree."""
import math
import os
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
LINE = re.compile(r"^(\S+)  (\S+) \[([0-9, ]*)\]  min (\S+)  max (\S+)  mean (\S+)$")


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=300)


def summary(bin_, model, *args):
    r = run(bin_, "eval", model, *args)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    out = {}
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        assert m, line
        out[m.group(1)] = (m.group(2), m.group(3), float(m.group(4)), float(m.group(5)), float(m.group(6)))
    return out


@pytest.mark.parametrize("name", ["activity_fp16", "activity_fp32"])
def test_activity_runs_reproducibly(palettize_bin, name):
    first = summary(palettize_bin, SHARED / f"{name}.mlpackage", "--seed", 7)
    assert first == summary(palettize_bin, SHARED / f"{name}.mlpackage", "--seed", 7)
    dtype, shape, lo, hi, mean = first["softmax_0"]
    assert (dtype, shape) == ("float32", "1, 3")
    assert 0 <= lo <= hi <= 1 and all(math.isfinite(v) for v in (lo, hi, mean))
    assert mean == pytest.approx(1 / 3, abs=1e-3)  # a softmax over 3 classes sums to 1
    assert first != summary(palettize_bin, SHARED / f"{name}.mlpackage", "--seed", 8)


def test_activity_fp16_agrees_with_fp32(palettize_bin):
    for seed in range(5):
        a = summary(palettize_bin, SHARED / "activity_fp16.mlpackage", "--seed", seed)["softmax_0"]
        b = summary(palettize_bin, SHARED / "activity_fp32.mlpackage", "--seed", seed)["softmax_0"]
        assert a[2] == pytest.approx(b[2], abs=2e-3) and a[3] == pytest.approx(b[3], abs=2e-3)
