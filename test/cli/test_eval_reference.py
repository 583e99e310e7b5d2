"""Ops that converters emit and the evaluator learned late (softplus_parametric, argsort, iOS17
resize), each in a program built with coremltools' MIL builder, converted, and run by `palettize
eval` on .npz inputs; the outputs are compared with numpy written after coremltools' definition of
the op (its value_inference where it has one: softplus_parametric, argsort)."""
import subprocess

import pytest

np = pytest.importorskip("numpy")
ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402


def run_eval(bin_, prog, target, tmp_path, inputs, precision="fp32"):
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target,
                       compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16)
    path = tmp_path / "m.mlpackage"
    model.save(str(path))
    ops = {op.type for op in model.get_spec().mlProgram.functions["main"].block_specializations[
        model.get_spec().mlProgram.functions["main"].opset].operations}
    np.savez(tmp_path / "in.npz", **inputs)
    r = subprocess.run([bin_, "eval", path, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz",
                        "--force"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as z:
        return {k: z[k] for k in z.files}, ops


def value_inference_softplus_parametric(x, alpha, beta):
    """coremltools' softplus_parametric.value_inference (iOS15 activation.py)."""
    shape = [1] * x.ndim
    shape[1] = -1
    return alpha.reshape(shape) * np.log(1 + np.exp(x * beta.reshape(shape)))


@pytest.mark.parametrize("precision,tol", [("fp32", 1e-6), ("fp16", 2e-3)])
def test_softplus_parametric(palettize_bin, tmp_path, precision, tol):
    rng = np.random.default_rng(1)
    alpha = rng.uniform(0.5, 2, 3).astype(np.float32)
    beta = rng.uniform(-2, 2, 3).astype(np.float32)
    x = rng.normal(size=(2, 3, 4, 5)).astype(np.float32) * 3

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.softplus_parametric(x=x, alpha=alpha, beta=beta, name="y")

    out, ops = run_eval(palettize_bin, prog, ct.target.iOS16, tmp_path, {"x": x}, precision)
    assert "softplus_parametric" in ops
    want = value_inference_softplus_parametric(x.astype(np.float64), alpha, beta)
    got = out["y"]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("axis,ascending", [(-1, False), (1, True), (0, False)])
def test_argsort(palettize_bin, tmp_path, axis, ascending):
    rng = np.random.default_rng(2)
    # Ties (values from a small set) check the order of equal values: numpy's stable sort.
    x = rng.integers(0, 5, size=(3, 6, 4)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.argsort(x=x, axis=axis, ascending=ascending, name="idx")

    out, ops = run_eval(palettize_bin, prog, ct.target.iOS16, tmp_path, {"x": x})
    assert "argsort" in ops
    # value_inference: np.argsort(x) ascending, np.argsort(-x) descending; stable for the ties.
    want = np.argsort(x if ascending else -x, axis=axis, kind="stable")
    assert out["idx"].dtype == np.int32
    np.testing.assert_array_equal(out["idx"], want)


def grid(mode, n_in, n_out):
    """Source coordinates of resize_bilinear's sampling modes (iOS15 image_resizing.py notes)."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        g = i * (n_in - 1) / (n_out - 1) if n_out > 1 else np.full(n_out, (n_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0)
    elif mode == "DEFAULT":
        g = i * (n_in - n_in / n_out) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    else:  # UNALIGN_CORNERS
        g = (i + 0.5) * n_in / n_out - 0.5
    return np.clip(g, 0, n_in - 1)


def bilinear(x, gy, gx):
    h, w = x.shape[-2:]
    y0 = np.floor(gy).astype(int)
    x0 = np.floor(gx).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (gy - y0)[:, None], (gx - x0)[None, :]
    top = x[..., y0[:, None], x0[None, :]] * (1 - fx) + x[..., y0[:, None], x1[None, :]] * fx
    bottom = x[..., y1[:, None], x0[None, :]] * (1 - fx) + x[..., y1[:, None], x1[None, :]] * fx
    return top * (1 - fy) + bottom * fy


@pytest.mark.parametrize("mode", ["DEFAULT", "STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "OFFSET_CORNERS",
                                  "UNALIGN_CORNERS"])
def test_resize_linear(palettize_bin, tmp_path, mode):
    x = np.random.default_rng(3).normal(size=(1, 2, 5, 7)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.resize(x=x, shape=np.array([9, 4], np.int32), resized_dims=np.uint32(2),
                         interpolation_mode="LINEAR", sampling_mode=mode, name="y")

    out, ops = run_eval(palettize_bin, prog, ct.target.iOS17, tmp_path, {"x": x})
    assert "resize" in ops
    want = bilinear(x.astype(np.float64), grid(mode, 5, 9), grid(mode, 7, 4))
    assert out["y"].shape == (1, 2, 9, 4)
    np.testing.assert_allclose(out["y"], want, rtol=1e-5, atol=1e-5)


def test_resize_nearest_and_one_resized_dim(palettize_bin, tmp_path):
    """NEAREST_NEIGHBOR reads floor(i * in / out) (as resize_nearest_neighbor); with resized_dims 1
    only the last axis changes, and a 0 in `shape` keeps x's size."""
    x = np.random.default_rng(4).normal(size=(1, 3, 4, 6)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS17)
    def prog(x):
        near = mb.resize(x=x, shape=np.array([0, 10], np.int32), resized_dims=np.uint32(2),
                         interpolation_mode="NEAREST_NEIGHBOR", name="near")
        last = mb.resize(x=x, shape=np.array([13], np.int32), resized_dims=np.uint32(1),
                         interpolation_mode="LINEAR", sampling_mode="ALIGN_CORNERS", name="last")
        return near, last

    out, _ = run_eval(palettize_bin, prog, ct.target.iOS17, tmp_path, {"x": x})
    cols = np.minimum(np.arange(10) * 6 // 10, 5)
    np.testing.assert_array_equal(out["near"], x[..., cols])
    want = bilinear(x.astype(np.float64), np.arange(4.0), grid("ALIGN_CORNERS", 6, 13))
    np.testing.assert_allclose(out["last"], want, rtol=1e-5, atol=1e-5)
