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


@pytest.mark.parametrize("name,outputs", [
    ("mnist", {"Prediction": ("int64", ""), "Prediction_probs": ("float32", "10")}),
    ("keras_video", {"Identity": ("float32", "1, 1")}),
])
def test_shared_models_run_reproducibly(palettize_bin, name, outputs):
    first = summary(palettize_bin, SHARED / f"{name}.mlpackage")
    assert first == summary(palettize_bin, SHARED / f"{name}.mlpackage")
    assert {k: v[:2] for k, v in first.items()} == outputs
    assert all(math.isfinite(v) for out in first.values() for v in out[2:])


def test_mnist_probabilities_sum_to_one(palettize_bin):
    for seed in range(3):
        out = summary(palettize_bin, SHARED / "mnist.mlpackage", "--seed", seed)
        assert out["Prediction_probs"][4] * 10 == pytest.approx(1, abs=1e-2)
        assert 0 <= out["Prediction"][2] <= 9


def test_unknown_function_is_named(palettize_bin):
    model = SHARED / "activity_fp32.mlpackage"
    r = run(palettize_bin, "eval", model, "--function", "other")
    assert r.returncode == 1
    assert r.stderr == f"palettize: {model}/Data/com.apple.CoreML/model.mlmodel: no function 'other' (the program has: main)\n"


def test_unsupported_op_is_named(palettize_bin, tmp_path):
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8))], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.argsort(x=x, name="top")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32)
    path = tmp_path / "argsort.mlpackage"
    model.save(str(path))
    r = run(palettize_bin, "eval", path)
    assert r.returncode == 2
    assert r.stderr == (f"palettize: {path}/Data/com.apple.CoreML/model.mlmodel: op 'top' (argsort): "
                        "op type not supported by palettize eval\n")
