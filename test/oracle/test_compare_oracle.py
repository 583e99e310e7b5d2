"""`palettize compare` checked against numpy on coremltools' decompression.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv/bin/python -m pytest test/oracle/test_compare_oracle.py

For every model (../shared/models and the fixtures) and a few configs (CONFIGS), the model is
compressed with `palettize compress`, then `palettize compare ORIGINAL COMPRESSED --json` must give,
for every const weight coremltools finds in ORIGINAL, the numbers numpy gives on the values of
coremltools' decompression of COMPRESSED (decompress_weights, or its WeightDecompressor pass for
models it refuses; the inputs of chains ORIGINAL already held are read as they are): sum x^2 and sum (x - y)^2 to 1e-9 relative, SNR to 1e-9 relative (null when
sse is 0), max abs error exactly; and the state (palettized with the report's nbits, or
unchanged). Plus: identical packages, the --min-snr gate and its exit codes, mismatched models.
"""

import json
import math
import os
import subprocess

import numpy as np
import pytest

import compress_oracle as co
import dump_weights
from oracle_conftest import SUBPROCESS_TIMEOUT, fmt_key, weight_key

CONFIGS = {
    "k4": ["--nbits", "4", "--weight-threshold", "0"],
    # iOS18 forms: a table per group of 8 channels, a per-channel scale op after the LUT.
    "g8pcs3": ["--granularity", "per_grouped_channel", "--group-size", "8", "--per-channel-scale", "--nbits", "3",
               "--weight-threshold", "0"],
    # Vector tables of int8 entries: a shift/scale op feeding the LUT.
    "lut8cd2": ["--lut-dtype", "int8", "--cluster-dim", "2", "--nbits", "4", "--weight-threshold", "0"],
}
# compressed_ios16 already holds an iOS16 LUT, which an iOS18 output cannot keep: compress refuses.
REFUSED = {("fixture/compressed_ios16", "g8pcs3"), ("fixture/compressed_ios16", "lut8cd2")}


def palettize(*args):
    exe = os.environ.get("PALETTIZE_BIN")
    if not exe:
        pytest.fail("PALETTIZE_BIN is not set; it must point at the built binary")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT)


def compare_json(original, compressed, *extra):
    r = palettize("compare", original, compressed, "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def expected_numbers(x, y):
    """signal, sse, max abs error, SNR of y against x, in float64 as numpy computes them."""
    x = np.asarray(x).astype(np.float64)
    y = np.asarray(y).astype(np.float64)
    d = x - y
    signal = float(np.sum(x * x))
    sse = float(np.sum(d * d))
    max_err = float(np.max(np.abs(d))) if d.size else 0.0
    snr = math.inf if sse == 0 else (10 * math.log10(signal / sse) if signal > 0 else -math.inf)
    return signal, sse, max_err, snr


@pytest.mark.parametrize("config", list(CONFIGS))
def test_compare_matches_numpy_on_coremltools(oracle, model_id, config, tmp_path):
    original = oracle.session_copy(model_id)
    out = tmp_path / "out.mlpackage"
    report_path = tmp_path / "report.json"
    r = palettize("compress", original, "-o", out, "--report", report_path, "-q", *CONFIGS[config])
    if (model_id, config) in REFUSED:
        assert r.returncode == 1, r.stderr
        return
    assert r.returncode == 0, r.stderr
    report = {weight_key(w): w for w in json.loads(report_path.read_text())["weights"]}
    doc = compare_json(original, out)
    ours = {weight_key(w): w for w in doc["weights"]}

    dump = oracle.dump(model_id)
    assert set(ours) == {weight_key(rec) for rec in dump["weights"]}
    dec, how = co.decompressed_index(out, tmp_path)
    # The inputs of chains the original already held (compressed_* fixtures) stay consts in OUT;
    # coremltools' decompression folds them away, so they are read from OUT as it is.
    raw, _ = co.const_index(out)
    total_signal = total_sse = 0.0
    for rec in dump["weights"]:
        key = weight_key(rec)
        w = ours[key]
        x = dump["values"][dump_weights.npz_key(*key)]
        _name, y = dec.find(rec)
        if y is None:
            y = raw.get(*key)
        assert y is not None, f"{fmt_key(key)}: not in coremltools' decompression ({how})"
        assert w["dtype"] == rec["dtype"] and w["shape"] == list(rec["shape"])
        signal, sse, max_err, snr = expected_numbers(x, y)
        assert w["max_abs_error"] == max_err, fmt_key(key)
        assert w["sse"] == pytest.approx(sse, rel=1e-9, abs=0), fmt_key(key)
        assert w["signal"] == pytest.approx(signal, rel=1e-9, abs=0), fmt_key(key)
        if math.isfinite(snr):
            assert w["snr_db"] == pytest.approx(snr, rel=1e-9), fmt_key(key)
        else:
            assert w["snr_db"] is None, fmt_key(key)
        if report[key]["status"] == "palettized":
            assert (w["state"], w["nbits"]) == ("palettized", report[key]["nbits"]), fmt_key(key)
        else:
            assert (w["state"], w["nbits"], w["sse"]) == ("unchanged", None, 0), fmt_key(key)
        assert w["problem"] == ""
        total_signal += signal
        total_sse += sse
    t = doc["totals"]
    assert t["weights"] == len(dump["weights"])
    assert t["palettized"] == sum(1 for w in report.values() if w["status"] == "palettized")
    assert t["unchanged"] == t["weights"] - t["palettized"]
    assert (t["missing"], t["mismatched"], t["constexpr"]) == (0, 0, 0)
    assert t["sse"] == pytest.approx(total_sse, rel=1e-9, abs=0)
    assert t["max_abs_error"] == max((w["max_abs_error"] for w in ours.values()), default=0)
    finite = [w["snr_db"] for w in ours.values() if w["snr_db"] is not None]
    if finite:
        assert t["min_snr_db"] == min(finite)
        assert t["snr_db"] == pytest.approx(10 * math.log10(total_signal / total_sse), rel=1e-9)


def test_identical_packages_have_infinite_snr(oracle, model_id):
    original = oracle.session_copy(model_id)
    doc = compare_json(original, original, "--min-snr", "1000")
    assert doc["weights"], "no weights to compare"
    for w in doc["weights"]:
        assert (w["state"], w["sse"], w["max_abs_error"], w["snr_db"]) == ("unchanged", 0, 0, None), w["name"]
    t = doc["totals"]
    assert (t["sse"], t["max_abs_error"], t["snr_db"], t["min_snr_db"]) == (0, 0, None, None)
    assert t["unchanged"] == t["weights"] == len(oracle.dump(model_id)["weights"])


@pytest.fixture(scope="module")
def mnist_4bit(oracle, tmp_path_factory):
    original = oracle.session_copy("shared/mnist")
    out = tmp_path_factory.mktemp("compare") / "m4.mlpackage"
    r = palettize("compress", original, "-o", out, "--nbits", "4", "-q")
    assert r.returncode == 0, r.stderr
    return original, out


def test_min_snr_gate(mnist_4bit):
    original, out = mnist_4bit
    doc = compare_json(original, out)
    worst = doc["totals"]["min_snr_db"]
    below = [w for w in doc["weights"] if w["snr_db"] is not None]
    assert len(below) == 2 and worst == min(w["snr_db"] for w in below)
    worst_name = min(below, key=lambda w: w["snr_db"])["name"]

    r = palettize("compare", original, out, "--min-snr", f"{worst - 0.01}")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    r = palettize("compare", original, out, "--min-snr", "40")
    assert r.returncode == 4
    assert r.stderr == (f"palettize: {out}: 2 of 5 weights have an SNR below 40 dB; "
                        f"the worst, main/{worst_name}, has {worst:.2f} dB\n")
    assert "palettized 4-bit" in r.stdout  # the table is printed all the same
    threshold = (worst + max(w["snr_db"] for w in below)) / 2
    r = palettize("compare", original, out, "--min-snr", f"{threshold}", "--json")
    assert r.returncode == 4
    assert r.stderr.startswith(f"palettize: {out}: 1 of 5 weights has an SNR below ")
    assert json.loads(r.stdout) == doc


def test_table_output(mnist_4bit):
    original, out = mnist_4bit
    r = palettize("compare", original, out)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{original} -> {out}"
    assert lines[1].split() == ["weight", "dtype", "shape", "snr_db", "max_abs_error", "state"]
    assert lines[2].split() == ["op_10", "int32", "2", "inf", "0", "unchanged"]
    assert lines[3].split()[:3] == ["model_Dense1_weight_to_fp16", "float16", "800x784"]
    assert lines[3].endswith("palettized 4-bit")
    assert lines[-1].startswith("5 weights: 2 palettized, 3 unchanged; SNR ")


def test_mismatched_models_are_an_error(oracle):
    mnist = oracle.session_copy("shared/mnist")
    keras = oracle.session_copy("shared/keras_video")
    r = palettize("compare", mnist, keras, "--json", "--min-snr", "0")
    assert r.returncode == 2
    assert r.stderr == (f"palettize: {keras}: weight main/op_10: missing: no const or constexpr op of this name "
                        "(and 4 more missing or mismatched)\n")
    doc = json.loads(r.stdout)
    assert [w["state"] for w in doc["weights"]] == ["missing"] * 5
    assert doc["totals"]["missing"] == 5


def test_other_dtype_is_an_error(oracle, tmp_path):
    """A copy of mnist whose bias const claims float32: a mismatch, named with both types."""
    from coremltools.proto import MIL_pb2

    mnist = oracle.session_copy("shared/mnist")
    bad = oracle.copy_model("shared/mnist", tmp_path)
    model_file = co.root_model_file(bad)
    spec = co.read_spec(bad)
    for op in spec.mlProgram.functions["main"].block_specializations["CoreML5"].operations:
        if op.type == "const" and co.op_name(op) == "model_Dense1_bias_to_fp16":
            op.outputs[0].type.tensorType.dataType = MIL_pb2.FLOAT32
            op.attributes["val"].type.tensorType.dataType = MIL_pb2.FLOAT32
    model_file.write_bytes(spec.SerializeToString())
    r = palettize("compare", mnist, bad, "--json")
    assert r.returncode == 2
    assert r.stderr == (f"palettize: {bad}: weight main/model_Dense1_bias_to_fp16: mismatch: float32 [800], "
                        "not float16 [800] as in the original\n")
    states = [w["state"] for w in json.loads(r.stdout)["weights"]]
    assert states == ["unchanged", "unchanged", "mismatch", "unchanged", "unchanged"]


def test_missing_package(oracle, tmp_path):
    mnist = oracle.session_copy("shared/mnist")
    r = palettize("compare", mnist, tmp_path / "nope.mlpackage")
    assert r.returncode == 3
    assert r.stdout == ""
    assert r.stderr == f"palettize: {tmp_path}/nope.mlpackage: no such package\n"
