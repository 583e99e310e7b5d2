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
        return mb.sliding_windows(x=x, axis=1, size=2, stride=2, name="win")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32)
    path = tmp_path / "sliding_windows.mlpackage"
    model.save(str(path))
    r = run(palettize_bin, "eval", path)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (f"palettize: {path}/Data/com.apple.CoreML/model.mlmodel: op 'win' (sliding_windows): "
                        "op type not supported by palettize eval\n")


def test_a_missing_input_of_open_shape_takes_the_described_default(palettize_bin, tmp_path):
    """An input the .npz lacks is generated from its declaration; where the program leaves its shape
    open, at the model description's default shape (test_eval_function_inputs.py covers ranges and
    enumerated shapes)."""
    np = pytest.importorskip("numpy")
    ct = pytest.importorskip("coremltools")
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import get_new_symbol

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4)), mb.TensorSpec(shape=(1, get_new_symbol()))],
                opset_version=ct.target.iOS16)
    def prog(a, b):
        return mb.relu(x=a, name="ra"), mb.relu(x=b, name="rb")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32)
    path = tmp_path / "open.mlpackage"
    model.save(str(path))
    inputs = tmp_path / "in.npz"
    np.savez(inputs, a=np.ones((1, 4), np.float32))
    # The program leaves b's dimension open; the description coremltools writes gives its default
    # shape (a range from 1, default 1), so b is generated at [1, 1].
    generated = summary(palettize_bin, path, "--inputs", inputs)
    assert generated["rb"][:2] == ("float32", "1, 1")
    # Given, it runs at the size given; the missing fixed-shape input is generated.
    np.savez(inputs, b=-np.ones((1, 2), np.float32))
    out = summary(palettize_bin, path, "--inputs", inputs)
    assert out["rb"] == ("float32", "1, 2", 0.0, 0.0, 0.0)
    assert out["ra"][:2] == ("float32", "1, 4") and out["ra"][3] > 0


# ------------------------------------------------------------------------------------------------
# --inputs and --outputs (.npz)
# ------------------------------------------------------------------------------------------------

ACTIVITY = SHARED / "activity_fp32.mlpackage"


def load_npz(path):
    np = pytest.importorskip("numpy")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("compressed", [False, True])
def test_inputs_from_npz_and_outputs_read_by_numpy_equal_the_summary(palettize_bin, tmp_path, compressed):
    np = pytest.importorskip("numpy")
    x = np.random.default_rng(3).normal(size=(1, 8)).astype(np.float32)
    inputs = tmp_path / "in.npz"
    (np.savez_compressed if compressed else np.savez)(inputs, features=x)
    summ = summary(palettize_bin, ACTIVITY, "--inputs", inputs)
    out = tmp_path / "out.npz"
    r = run(palettize_bin, "eval", ACTIVITY, "--inputs", inputs, "--outputs", out)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == f"wrote 1 outputs to {out}\n"
    got = load_npz(out)
    assert list(got) == ["softmax_0"]
    y = got["softmax_0"]
    assert (str(y.dtype), ", ".join(map(str, y.shape))) == summ["softmax_0"][:2]
    # The summary prints 6 significant digits.
    assert summ["softmax_0"][2:] == pytest.approx((y.min(), y.max(), y.mean()), rel=1e-5, abs=1e-9)
    # The inputs were read: other inputs give other outputs, generated ones other again.
    assert summ != summary(palettize_bin, ACTIVITY)


def test_inputs_the_npz_lacks_are_generated_from_the_seed(palettize_bin, tmp_path):
    np = pytest.importorskip("numpy")
    empty = tmp_path / "empty.npz"
    np.savez(empty)
    assert summary(palettize_bin, ACTIVITY, "--inputs", empty, "--seed", 5) == summary(palettize_bin, ACTIVITY, "--seed", 5)


@pytest.mark.parametrize("array,message", [
    ("float64", "input 'features': float64 [1, 8], the model takes float32 [1, 8]"),
    ("shape", "input 'features': float32 [1, 7], the model takes float32 [1, 8]"),
    ("rank", "input 'features': float32 [8], the model takes float32 [1, 8]"),
    ("int", "input 'features': int32 [1, 8], the model takes float32 [1, 8]"),
    ("name", "array 'feature' is not an input of function 'main' (its inputs: features)"),
    ("fortran", "entry 'features.npy': .npy header: fortran_order is True; only C-order arrays are read"),
])
def test_a_mistyped_misshaped_or_misnamed_input_is_one_line(palettize_bin, tmp_path, array, message):
    np = pytest.importorskip("numpy")
    arrays = {
        "float64": {"features": np.zeros((1, 8))},
        "shape": {"features": np.zeros((1, 7), np.float32)},
        "rank": {"features": np.zeros(8, np.float32)},
        "int": {"features": np.zeros((1, 8), np.int32)},
        "name": {"feature": np.zeros((1, 8), np.float32)},
        "fortran": {"features": np.asfortranarray(np.zeros((8, 2), np.float32))},
    }[array]
    inputs = tmp_path / "in.npz"
    np.savez(inputs, **arrays)
    out = tmp_path / "out.npz"
    r = run(palettize_bin, "eval", ACTIVITY, "--inputs", inputs, "--outputs", out)
    assert (r.returncode, r.stdout) == (1 if array != "fortran" else 2, "")
    assert r.stderr == f"palettize: {inputs}: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz"]  # nothing written


def test_a_damaged_npz_and_a_missing_one_are_named(palettize_bin, tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip archive")
    r = run(palettize_bin, "eval", ACTIVITY, "--inputs", bad)
    assert (r.returncode, r.stderr) == (2, f"palettize: {bad}: not a zip archive (no end of central directory record)\n")
    text = tmp_path / "text.npz"
    text.write_text("features = [1, 2, 3]\n")
    r = run(palettize_bin, "eval", ACTIVITY, "--inputs", text)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"palettize: {text}: not a zip archive (21 bytes)\n"
    r = run(palettize_bin, "eval", ACTIVITY, "--inputs", tmp_path / "none.npz")
    assert r.returncode == 3 and r.stderr.startswith(f"palettize: {tmp_path / 'none.npz'}: ")


def test_outputs_follow_the_path_rules(palettize_bin, tmp_path, mnist):
    out = tmp_path / "out.npz"
    out.write_bytes(b"old")
    r = run(palettize_bin, "eval", mnist, "--outputs", out)
    assert (r.returncode, r.stderr) == (1, f"palettize: {out}: already exists (use --force to replace it)\n")
    assert out.read_bytes() == b"old"
    r = run(palettize_bin, "eval", mnist, "--outputs", out, "--force")
    assert r.returncode == 0, r.stderr
    assert set(load_npz(out)) == {"Prediction", "Prediction_probs"}
    inside = mnist / "out.npz"
    r = run(palettize_bin, "eval", mnist, "--outputs", inside)
    assert r.returncode == 1
    assert r.stderr == f"palettize: {inside}: the output lies inside the input {mnist}; write outside it\n"
    assert not inside.exists()
    r = run(palettize_bin, "eval", mnist, "--inputs", out, "--outputs", out, "--force")
    assert r.returncode == 1
    assert r.stderr == f"palettize: {out}: the output is the --inputs file; write to another path\n"


def psnr(ref, got):
    np = pytest.importorskip("numpy")
    mse = np.mean((ref - got) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(np.max(np.abs(ref)) ** 2 / mse)


def test_output_psnr_falls_as_bits_fall(palettize_bin, tmp_path):
    """keras_video compressed at 8, 6, 4, 2 bits, run on the same 8 inputs (numpy, seeded) as the
    uncompressed model: the outputs' PSNR against the uncompressed outputs falls with the bits."""
    np = pytest.importorskip("numpy")
    src = SHARED / "keras_video.mlpackage"
    rng = np.random.default_rng(0)
    samples = []
    for k in range(8):
        path = tmp_path / f"in{k}.npz"
        np.savez(path, input_1=rng.normal(size=(1, 6, 160)).astype(np.float32))
        samples.append(path)

    def outputs(model):
        got = []
        for path in samples:
            out = tmp_path / "out.npz"
            r = run(palettize_bin, "eval", model, "--inputs", path, "--outputs", out, "--force")
            assert r.returncode == 0, r.stderr
            got.append(load_npz(out)["Identity"].astype(np.float64).ravel())
        return np.concatenate(got)

    ref = outputs(src)
    measured = []
    for nbits in (8, 6, 4, 2):
        dst = tmp_path / f"c{nbits}.mlpackage"
        r = run(palettize_bin, "compress", src, "-o", dst, "--nbits", nbits, "-q")
        assert r.returncode == 0, r.stderr
        measured.append(psnr(ref, outputs(dst)))
    print("keras_video output PSNR (dB) at 8, 6, 4, 2 bits:", ", ".join(f"{p:.1f}" for p in measured))
    assert all(a > b for a, b in zip(measured, measured[1:])), measured
    assert measured[0] > 40
