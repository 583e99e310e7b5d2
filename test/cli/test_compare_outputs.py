"""palettize compare --inputs: output fidelity of keras_video compressed at 8 and 2 bits, checked
against numpy on the outputs `palettize eval --outputs` writes for both models; the sample list
(files and a folder), --min-output-psnr's exit 4, --json, and one-line errors with nothing printed."""
import json
import math
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
MODEL = SHARED / "keras_video.mlpackage"


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def setup(palettize_bin, tmp_path_factory):
    d = tmp_path_factory.mktemp("cmpout")
    for nbits in (8, 2):
        r = run(palettize_bin, "compress", MODEL, "-o", d / f"k{nbits}.mlpackage", "--nbits", nbits, "-q")
        assert r.returncode == 0, r.stderr
    rng = np.random.default_rng(15)
    np.savez(d / "one.npz", input_1=rng.standard_normal((1, 6, 160)).astype(np.float32))
    (d / "many").mkdir()
    for name in ("c", "a", "b"):  # written out of order: the folder is read in name order
        np.savez(d / "many" / f"{name}.npz", input_1=rng.standard_normal((1, 6, 160)).astype(np.float32))
    (d / "many" / "notes.txt").write_text("not a sample")
    return d


def compare_json(bin_, comp, *inputs, extra=()):
    r = run(bin_, "compare", MODEL, comp, "--json", "--inputs", *inputs, *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def expected(bin_, comp, sample, tmp):
    """PSNR (peak max |x|), cosine and max abs error of `comp` against the original by numpy."""
    outs = []
    for i, model in enumerate((MODEL, comp)):
        path = tmp / f"out-{comp.name}-{sample.stem}-{i}.npz"
        r = run(bin_, "eval", model, "--inputs", sample, "--outputs", path, "--force")
        assert r.returncode == 0, r.stderr
        outs.append(np.load(path)["Identity"].astype(np.float64).ravel())
    x, y = outs
    mse = np.mean((x - y) ** 2)
    psnr = 10 * math.log10(np.max(np.abs(x)) ** 2 / mse) if mse else math.inf
    cosine = float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
    return psnr, cosine, float(np.max(np.abs(x - y)))


def test_psnr_matches_numpy_and_orders_bits(palettize_bin, setup):
    d = setup
    psnr = {}
    for nbits in (8, 2):
        comp = d / f"k{nbits}.mlpackage"
        doc = compare_json(palettize_bin, comp, d / "one.npz")
        (row,) = doc["outputs"]["per_sample"]
        assert (row["name"], row["sample"], row["dtype"], row["shape"]) == ("Identity", str(d / "one.npz"), "float32", [1, 1])
        want = expected(palettize_bin, comp, d / "one.npz", d)
        assert row["psnr_db"] == pytest.approx(want[0], rel=1e-9)
        assert row["cosine"] == pytest.approx(want[1], rel=1e-12)
        assert row["max_abs_error"] == pytest.approx(want[2], rel=1e-12)
        assert row["mse"] > 0 and math.isfinite(row["psnr_db"])
        psnr[nbits] = row["psnr_db"]
    assert psnr[8] > psnr[2] + 10, psnr


def test_folder_is_samples_in_name_order_with_totals(palettize_bin, setup):
    d = setup
    comp = d / "k2.mlpackage"
    doc = compare_json(palettize_bin, comp, d / "one.npz", d / "many")
    names = [str(d / "one.npz")] + [str(d / "many" / f"{n}.npz") for n in "abc"]
    out = doc["outputs"]
    assert out["samples"] == names
    assert [r["sample"] for r in out["per_sample"]] == names
    for r in out["per_sample"]:
        want = expected(palettize_bin, comp, pathlib.Path(r["sample"]), d)
        assert r["psnr_db"] == pytest.approx(want[0], rel=1e-9)
        assert r["max_abs_error"] == pytest.approx(want[2], rel=1e-12)
    (tot,) = out["totals"]
    assert tot["name"] == "Identity"
    assert tot["min_psnr_db"] == min(r["psnr_db"] for r in out["per_sample"])
    assert tot["max_abs_error"] == max(r["max_abs_error"] for r in out["per_sample"])
    assert tot["mean_cosine"] == pytest.approx(np.mean([r["cosine"] for r in out["per_sample"]]), rel=1e-15)
    # The weights part is what compare prints without --inputs.
    plain = json.loads(run(palettize_bin, "compare", MODEL, comp, "--json").stdout)
    assert {k: v for k, v in doc.items() if k != "outputs"} == plain

    table = run(palettize_bin, "compare", MODEL, comp, "--inputs", d / "one.npz", d / "many")
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(run(palettize_bin, "compare", MODEL, comp).stdout)
    lines = table.stdout.splitlines()
    head = lines.index("outputs on 4 samples (psnr_db: peak max |original|; all: worst PSNR, mean cosine, max error)")
    assert lines[head + 1].split() == ["output", "sample", "psnr_db", "cosine", "max_abs_error"]
    rows = [line.split() for line in lines[head + 2:]]
    assert [r[1] for r in rows] == names + ["all"]
    assert [float(r[2]) for r in rows] == [round(r["psnr_db"], 2) for r in out["per_sample"]] + [round(tot["min_psnr_db"], 2)]


def test_min_output_psnr_passes_8_bit_and_fails_2_bit(palettize_bin, setup):
    d = setup
    p8 = compare_json(palettize_bin, d / "k8.mlpackage", d / "one.npz")["outputs"]["totals"][0]["min_psnr_db"]
    p2 = compare_json(palettize_bin, d / "k2.mlpackage", d / "one.npz")["outputs"]["totals"][0]["min_psnr_db"]
    gate = (p8 + p2) / 2
    ok = run(palettize_bin, "compare", MODEL, d / "k8.mlpackage", "--inputs", d / "one.npz", "--min-output-psnr", gate)
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    bad = run(palettize_bin, "compare", MODEL, d / "k2.mlpackage", "--inputs", d / "one.npz", "--min-output-psnr", gate)
    assert bad.returncode == 4
    assert "Identity" in bad.stdout  # the report is printed before the verdict
    assert bad.stderr == (f"palettize: {d / 'k2.mlpackage'}: 1 of 1 (output, sample) pairs have an output PSNR below "
                          f"{gate:.2f} dB; the worst, 'Identity' on {d / 'one.npz'}, has {p2:.2f} dB\n")
    usage = run(palettize_bin, "compare", MODEL, d / "k2.mlpackage", "--min-output-psnr", 10)
    assert usage.returncode == 1 and usage.stdout == ""


def test_model_against_itself(palettize_bin, setup):
    d = setup
    doc = compare_json(palettize_bin, MODEL, d / "one.npz", d / "many", extra=("--min-output-psnr", 1000))
    for r in doc["outputs"]["per_sample"]:
        assert (r["psnr_db"], r["mse"], r["cosine"], r["max_abs_error"]) == (None, 0, 1.0, 0)
    assert doc["outputs"]["totals"][0]["min_psnr_db"] is None
    table = run(palettize_bin, "compare", MODEL, MODEL, "--inputs", d / "one.npz")
    assert table.returncode == 0
    assert table.stdout.splitlines()[-1].split() == ["Identity", str(d / "one.npz"), "inf", "1.00000000", "0"]


def test_generated_inputs_are_the_same_for_both_models(palettize_bin, setup, tmp_path):
    # An .npz without the input: both models get eval's seeded input, so the model against itself is exact
    # and the 2-bit result equals numpy's on eval's outputs for the same seed.
    np.savez(tmp_path / "empty.npz")
    doc = compare_json(palettize_bin, MODEL, tmp_path / "empty.npz", extra=("--seed", 3))
    assert doc["outputs"]["per_sample"][0]["mse"] == 0
    comp = setup / "k2.mlpackage"
    got = compare_json(palettize_bin, comp, tmp_path / "empty.npz", extra=("--seed", 3))["outputs"]["per_sample"][0]
    outs = []
    for i, model in enumerate((MODEL, comp)):
        r = run(palettize_bin, "eval", model, "--seed", 3, "--outputs", tmp_path / f"{i}.npz")
        assert r.returncode == 0, r.stderr
        outs.append(np.load(tmp_path / f"{i}.npz")["Identity"].astype(np.float64))
    assert got["max_abs_error"] == float(np.max(np.abs(outs[0] - outs[1])))


@pytest.mark.parametrize("case,code", [("garbage", 2), ("wrong_name", 1), ("wrong_shape", 1), ("empty_folder", 1),
                                       ("missing", 3)])
def test_bad_inputs_are_one_line_and_nothing_printed(palettize_bin, setup, tmp_path, case, code):
    d = setup
    if case == "garbage":
        bad = tmp_path / "bad.npz"
        bad.write_bytes(b"PK\x03\x04 not really a zip")
    elif case == "wrong_name":
        bad = tmp_path / "bad.npz"
        np.savez(bad, input_2=np.zeros((1, 6, 160), np.float32))
    elif case == "wrong_shape":
        bad = tmp_path / "bad.npz"
        np.savez(bad, input_1=np.zeros((1, 6, 16), np.float32))
    elif case == "empty_folder":
        bad = tmp_path / "none"
        bad.mkdir()
    else:
        bad = tmp_path / "absent.npz"
    r = run(palettize_bin, "compare", MODEL, d / "k8.mlpackage", "--inputs", d / "one.npz", bad)
    assert r.returncode == code, r
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"palettize: {bad}"), r.stderr


def test_inputs_that_differ_are_named(palettize_bin, setup):
    # mnist takes other inputs than keras_video: the second model is named, nothing printed.
    mnist = SHARED / "mnist.mlpackage"
    r = run(palettize_bin, "compare", MODEL, mnist, "--inputs", setup / "one.npz")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"palettize: {mnist}/Data/com.apple.CoreML/model.mlmodel: the inputs of function 'main' "
                        "(Input) differ from the original's (input_1) in name, dtype or shape\n")


def save_program(path, out_name, out_len):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 8))], opset_version=ct.target.iOS16)
    def prog(x):
        y = mb.relu(x=x)
        return mb.slice_by_size(x=y, begin=[0, 0], size=[1, out_len], name=out_name)

    ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
               compute_precision=ct.precision.FLOAT32).save(str(path))


@pytest.mark.parametrize("out_name,out_len,problem", [
    ("other", 8, "function 'main' has no output 'out', which the original has"),
    ("out", 4, "output 'out' is float32 [1, 4], not float32 [1, 8] as in the original"),
])
def test_outputs_that_differ_are_named(palettize_bin, tmp_path, out_name, out_len, problem):
    save_program(tmp_path / "a.mlpackage", "out", 8)
    save_program(tmp_path / "b.mlpackage", out_name, out_len)
    np.savez(tmp_path / "x.npz", x=np.arange(8, dtype=np.float32).reshape(1, 8) - 4)
    r = run(palettize_bin, "compare", tmp_path / "a.mlpackage", tmp_path / "a.mlpackage", "--inputs", tmp_path / "x.npz")
    assert r.returncode == 0, r.stderr
    r = run(palettize_bin, "compare", tmp_path / "a.mlpackage", tmp_path / "b.mlpackage", "--inputs", tmp_path / "x.npz")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"palettize: {tmp_path / 'b.mlpackage'}/Data/com.apple.CoreML/model.mlmodel: {problem}\n"
