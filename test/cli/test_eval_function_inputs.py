"""`palettize eval` types its inputs from the function it runs (`--function NAME`, any function of a
multifunction model), not from the model's main inputs, and takes flexible shapes (coremltools'
RangeDim and EnumeratedShapes, which the program leaves unknown) from the model description: a
generated input has the default shape, a given one must be a shape the description allows."""
import subprocess

import pytest

np = pytest.importorskip("numpy")
ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import get_new_symbol  # noqa: E402


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=120)


def convert(prog, inputs=None):
    return ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18, inputs=inputs,
                      compute_precision=ct.precision.FLOAT32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """main: x float32 [1, 4]; `tokens`: ids int32 [1, 6] and w float32 [2, 3]; `flex`: z float32
    [1, 2..8] (default [1, 4]). Saved as one multifunction package, and `flex` and an enumerated
    twin as plain packages."""
    tmp = tmp_path_factory.mktemp("function_inputs")

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS18)
    def main(x):
        return mb.relu(x=x, name="y")

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 6), dtype=ct.converters.mil.mil.types.int32),
                             mb.TensorSpec(shape=(2, 3))], opset_version=ct.target.iOS18)
    def tokens(ids, w):
        s = mb.reduce_sum(x=mb.cast(x=ids, dtype="fp32"), axes=[1], keep_dims=True)
        return mb.mul(x=w, y=s, name="scaled")

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, get_new_symbol()))], opset_version=ct.target.iOS18)
    def flex(z):
        return mb.mul(x=z, y=2.0, name="doubled")

    paths = {}
    ranged = ct.TensorType(name="z", shape=ct.Shape(shape=(1, ct.RangeDim(2, 8, default=4))))
    enumerated = ct.TensorType(name="z", shape=ct.EnumeratedShapes(shapes=[(1, 3), (1, 5)], default=(1, 5)))
    for name, prog, inputs in [("main", main, None), ("tokens", tokens, None), ("flex", flex, [ranged]),
                               ("enum", flex, [enumerated])]:
        paths[name] = tmp / f"{name}.mlpackage"
        convert(prog, inputs).save(str(paths[name]))
    desc = ct.utils.MultiFunctionDescriptor()
    for name in ("main", "tokens", "flex"):
        desc.add_function(str(paths[name]), "main", name)
    desc.default_function_name = "main"
    paths["multi"] = tmp / "multi.mlpackage"
    ct.utils.save_multifunction(desc, str(paths["multi"]))
    return paths


def eval_npz(bin_, model, tmp_path, inputs, *args):
    path = tmp_path / "in.npz"
    np.savez(path, **inputs)
    out = tmp_path / "out.npz"
    r = run(bin_, "eval", model, "--inputs", path, "--outputs", out, "--force", *args)
    arrays = {}
    if r.returncode == 0:
        with np.load(out) as z:
            arrays = {k: z[k] for k in z.files}
    return r, path, arrays


def test_a_non_main_function_takes_its_own_inputs(palettize_bin, models, tmp_path):
    ids = np.arange(6, dtype=np.int32).reshape(1, 6)
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    r, _, out = eval_npz(palettize_bin, models["multi"], tmp_path, {"ids": ids, "w": w}, "--function", "tokens")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(out["scaled"], w * 15)
    # Without inputs, both are generated in the function's own dtypes and shapes.
    r = run(palettize_bin, "eval", models["multi"], "--function", "tokens")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("scaled  float32 [2, 3]  min ")


@pytest.mark.parametrize("inputs,message", [
    ({"ids": np.zeros((1, 6), np.float32)}, "input 'ids': float32 [1, 6], the model takes int32 [1, 6]"),
    ({"w": np.zeros((3, 2), np.float32)}, "input 'w': float32 [3, 2], the model takes float32 [2, 3]"),
    ({"ids": np.zeros(6, np.int32)}, "input 'ids': int32 [6], the model takes int32 [1, 6]"),
    ({"x": np.zeros((1, 4), np.float32)}, "array 'x' is not an input of function 'tokens' (its inputs: ids, w)"),
])
def test_a_mistyped_input_of_a_non_main_function_is_one_line(palettize_bin, models, tmp_path, inputs, message):
    r, path, _ = eval_npz(palettize_bin, models["multi"], tmp_path, inputs, "--function", "tokens")
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"palettize: {path}: {message}\n"


def test_main_of_the_multifunction_model_keeps_its_inputs(palettize_bin, models, tmp_path):
    r, path, _ = eval_npz(palettize_bin, models["multi"], tmp_path, {"ids": np.zeros((1, 6), np.int32)})
    assert (r.returncode, r.stderr) == (1, f"palettize: {path}: array 'ids' is not an input of function 'main' "
                                           "(its inputs: x)\n")
    x = np.array([[-1, 2, -3, 4]], np.float32)
    r, _, out = eval_npz(palettize_bin, models["multi"], tmp_path, {"x": x})
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(out["y"], np.maximum(x, 0))


@pytest.mark.parametrize("model,function", [("flex", "main"), ("multi", "flex")])
def test_a_range_shape_is_generated_at_its_default_and_checked(palettize_bin, models, tmp_path, model, function):
    r = run(palettize_bin, "eval", models[model], "--function", function)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("doubled  float32 [1, 4]  min ")
    z = np.arange(7, dtype=np.float32).reshape(1, 7)
    r, _, out = eval_npz(palettize_bin, models[model], tmp_path, {"z": z}, "--function", function)
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(out["doubled"], 2 * z)
    r, path, _ = eval_npz(palettize_bin, models[model], tmp_path, {"z": np.zeros((1, 9), np.float32)},
                          "--function", function)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"palettize: {path}: input 'z': float32 [1, 9], the model takes float32 [1, 2..8]\n"


def test_enumerated_shapes_are_generated_at_the_default_and_checked(palettize_bin, models, tmp_path):
    r = run(palettize_bin, "eval", models["enum"])
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("doubled  float32 [1, 5]  min ")
    r, _, out = eval_npz(palettize_bin, models["enum"], tmp_path, {"z": np.ones((1, 3), np.float32)})
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(out["doubled"], np.full((1, 3), 2, np.float32))
    r, path, _ = eval_npz(palettize_bin, models["enum"], tmp_path, {"z": np.zeros((1, 4), np.float32)})
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"palettize: {path}: input 'z': float32 [1, 4], the model takes float32 [1, 5] or [1, 3]\n"
