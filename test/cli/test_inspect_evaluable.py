"""`palettize inspect` says whether each function can be run by `palettize eval`: the shared
models can, a program with ops the evaluator lacks cannot, and the op types are named with their
count and one op's name (text and --json)."""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))


def inspect(bin_, model, *args):
    r = subprocess.run([bin_, "inspect", str(model), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


@pytest.mark.parametrize("name", ["mnist", "keras_video", "activity_fp16", "activity_fp32"])
def test_shared_models_are_evaluable(palettize_bin, name):
    doc = json.loads(inspect(palettize_bin, SHARED / f"{name}.mlpackage", "--json"))
    [program] = doc["model"]["programs"]
    [main] = program["functions"]
    assert (main["name"], main["evaluable"], main["unsupported_ops"]) == ("main", True, [])
    text = inspect(palettize_bin, SHARED / f"{name}.mlpackage")
    assert "\n    main: evaluable by palettize eval\n" in text
    # And eval runs it, as inspect said.
    r = subprocess.run([palettize_bin, "eval", str(SHARED / f"{name}.mlpackage")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def unsupported(tmp_path_factory):
    """A program with two sliding_windows ops (one inside a cond's branch) and one reverse, ops
    the evaluator has no kernel for, beside ops it has."""
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8)), mb.TensorSpec(shape=(1,), dtype=ct.converters.mil.mil.types.bool)],
                opset_version=ct.target.iOS16)
    def prog(x, flag):
        a = mb.relu(x=x, name="act")
        w = mb.sliding_windows(x=a, axis=1, size=2, stride=2, name="win_a")
        r = mb.reverse(x=w, axes=[1], name="rev")

        def yes():
            return mb.sliding_windows(x=x, axis=1, size=2, stride=2, name="win_b")

        def no():
            return mb.mul(x=w, y=2.0, name="twice")

        p = mb.squeeze(x=flag, name="p")
        c = mb.cond(pred=p, _true_fn=yes, _false_fn=no, name="branch")
        return mb.add(x=r, y=c, name="out")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32)
    path = tmp_path_factory.mktemp("m") / "unsupported.mlpackage"
    model.save(str(path))
    return path


def test_unsupported_ops_are_listed_with_counts_and_an_op(palettize_bin, unsupported):
    doc = json.loads(inspect(palettize_bin, unsupported, "--json"))
    [main] = doc["model"]["programs"][0]["functions"]
    assert main["evaluable"] is False
    assert main["unsupported_ops"] == [
        {"op_type": "reverse", "count": 1, "example_op": "rev"},
        {"op_type": "sliding_windows", "count": 2, "example_op": "win_a"},
    ]
    text = inspect(palettize_bin, unsupported)
    assert ("\n    main: not evaluable by palettize eval; unsupported ops: reverse x1 (e.g. 'rev'), "
            "sliding_windows x2 (e.g. 'win_a')\n") in text
    # eval fails at the first of them, naming it (exit 2).
    r = subprocess.run([palettize_bin, "eval", str(unsupported)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr == (f"palettize: {unsupported}/Data/com.apple.CoreML/model.mlmodel: op 'win_a' "
                        "(sliding_windows): op type not supported by palettize eval\n")


def test_a_program_inside_a_pipeline_is_not_evaluable(palettize_bin):
    fixtures = pathlib.Path(os.environ.get("FIXTURES_DIR", ROOT / "build/fixtures"))
    doc = json.loads(inspect(palettize_bin, fixtures / "pipeline.mlpackage", "--json"))
    assert doc["model"]["type"] == "pipeline"
    functions = [f for p in doc["model"]["programs"] for f in p["functions"]]
    assert functions and all(f["evaluable"] is False for f in functions)
    text = inspect(palettize_bin, fixtures / "pipeline.mlpackage")
    assert "main: not evaluable by palettize eval (a program inside a pipeline)" in text
