"""`palettize compress --sensitivity FILE`: sensitivity-weighted k-means, checked with coremltools.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv/bin/python -m pytest test/oracle/test_sensitivity_oracle.py

Sensitivity files are written here with numpy (safetensors: 8-byte little-endian header length,
JSON header, raw data). For each case: elements given a huge sensitivity are reproduced exactly
while plain k-means does not reproduce them; the report says which tensor applied and how (name or
value match) or why none did; coremltools loads the output and its decompress_weights gives
values whose error against the original is what the report's sse / max_abs_error /
weighted_sse say. Bad sensitivity files exit 2 and write nothing.
"""

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import compress_oracle as co
from oracle_conftest import SUBPROCESS_TIMEOUT

DTYPES = {np.dtype("float16"): "F16", np.dtype("float32"): "F32", np.dtype("float64"): "F64"}
HEAVY = 1e15


def run_cli(oracle, args, what, expect_rc=0):
    cmd = [oracle._bin("PALETTIZE_BIN")] + [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    if proc.returncode != expect_rc:
        pytest.fail(f"{what}: exit code {proc.returncode}, expected {expect_rc}: {' '.join(cmd)}\n"
                    f"stderr:\n{proc.stderr.decode(errors='replace')[-3000:]}", pytrace=False)
    return proc


def write_safetensors(path, tensors, header_override=None):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        b = a.tobytes()
        header[name] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    text = (header_override if header_override is not None else json.dumps(header)).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def palettized_weights(report):
    return {w["name"]: w for w in report["weights"] if w["status"] == "palettized"}


def heavy_positions(shape, count, seed):
    rng = np.random.default_rng(seed)
    return [tuple(int(rng.integers(0, d)) for d in shape) for _ in range(count)]


def compress(oracle, src, out, report, extra, expect_rc=0):
    args = ["compress", src, "-o", out, "--report", report, *extra]
    proc = run_cli(oracle, args, "compress", expect_rc=expect_rc)
    return proc, (json.loads(Path(report).read_text()) if expect_rc == 0 else None)


def check_against_coremltools(tmp_path, src, out, report, sensitivities):
    """coremltools loads `out` and decompresses it to values whose errors against `src` are the
    report's."""
    original = co.const_index(src)[0]
    dec, _ = co.decompressed_index(out, tmp_path)
    for name, w in palettized_weights(report).items():
        x = original.get(w["program"], w["function"], name).astype(np.float64)
        y = dec.get(w["program"], w["function"], name).astype(np.float64)
        assert y.shape == x.shape
        diff = x - y
        assert np.sum(diff * diff) == pytest.approx(w["sse"], rel=1e-9, abs=1e-12), name
        assert np.max(np.abs(diff)) == pytest.approx(w["max_abs_error"], rel=1e-12, abs=0), name
        s = w["sensitivity"]
        if s is not None and s["weighted_sse"] is not None:
            sens = sensitivities[s["tensor"]].astype(np.float64)
            assert np.sum(sens * diff * diff) == pytest.approx(s["weighted_sse"], rel=1e-9, abs=1e-12), name
    return dec


CASES = [
    # model, weights to give sensitivities, flags
    ("shared/mnist", ["model_Dense1_weight_to_fp16", "model_Dense2_weight_to_fp16"], ["--nbits", "4"]),
    ("shared/mnist", ["model_Dense1_weight_to_fp16"],
     ["--nbits", "3", "--granularity", "per_grouped_channel", "--group-size", "100"]),
    ("fixture/linear_fp32", ["lin_weight_0"], ["--nbits", "2"]),
    ("fixture/linear_fp32", ["lin_weight_0"], ["--nbits", "4", "--granularity", "per_grouped_channel",
                                               "--group-size", "16"]),
    ("fixture/conv", ["conv1_weight_0"], ["--nbits", "2", "--per-channel-scale"]),
    # Vector tables: a vector weighs the sum of its elements' sensitivities.
    ("fixture/linear_fp32", ["lin_weight_0"], ["--nbits", "3", "--cluster-dim", "2"]),
    ("shared/mnist", ["model_Dense1_weight_to_fp16"], ["--nbits", "3", "--cluster-dim", "4"]),
]


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{m}:{' '.join(f)}" for m, _, f in CASES])
def test_heavy_elements_are_reproduced(oracle, tmp_path, case):
    model_id, names, flags = CASES[case]
    src = oracle.session_copy(model_id)
    original = {n: co.const_index(src)[0].get("", "main", n) for n in names}
    sens, heavy = {}, {}
    for i, n in enumerate(names):
        s = np.ones(original[n].shape, np.float32)
        heavy[n] = heavy_positions(s.shape, 4, seed=i)
        for p in heavy[n]:
            s[p] = HEAVY
        sens[n] = s
    sfile = tmp_path / "s.safetensors"
    write_safetensors(sfile, sens)
    _, plain = compress(oracle, src, tmp_path / "plain.mlpackage", tmp_path / "plain.json", flags)
    _, rep = compress(oracle, src, tmp_path / "w.mlpackage", tmp_path / "w.json",
                      flags + ["--sensitivity", sfile])
    assert rep["sensitivity"] == {"file": str(sfile), "normalize": False, "unused": []}
    assert plain["sensitivity"] is None
    weighted = palettized_weights(rep)
    for n in names:
        assert weighted[n]["sensitivity"]["tensor"] == n
        assert weighted[n]["sensitivity"]["match"] == "name"
        assert weighted[n]["sensitivity"]["note"] == ""
        assert palettized_weights(plain)[n]["sensitivity"] is None
    dec_w = check_against_coremltools(tmp_path, src, tmp_path / "w.mlpackage", rep, sens)
    dec_p = check_against_coremltools(tmp_path, src, tmp_path / "plain.mlpackage", plain, {})
    plain_exact = 0
    for n in names:
        x, yw, yp = original[n], dec_w.get("", "main", n), dec_p.get("", "main", n)
        for p in heavy[n]:
            if "--per-channel-scale" in flags:  # decoded as round(scale * entry): within rounding
                assert abs(float(yw[p]) - float(x[p])) <= 1e-6 * abs(float(x[p])), (n, p)
            else:
                assert yw[p] == x[p], (n, p)
            plain_exact += int(yp[p] == x[p])
        # The weighted tables pay in plain error elsewhere.
        assert weighted[n]["sse"] >= palettized_weights(plain)[n]["sse"] * (1 - 1e-9)
    assert plain_exact < sum(len(h) for h in heavy.values())


def test_value_match_and_fallback(oracle, tmp_path):
    """Training code's names: `Dense2.weight` holds the original weight (float32; the const is its
    float16 rounding) and `Dense2.weight.sensitivity` its sensitivities. Dense1 has no tensor and
    falls back to plain k-means; an unrelated tensor is listed as unused."""
    src = oracle.session_copy("shared/mnist")
    idx = co.const_index(src)[0]
    w2 = idx.get("", "main", "model_Dense2_weight_to_fp16")
    rng = np.random.default_rng(1)
    torch_w2 = w2.astype(np.float32) + rng.uniform(-1e-5, 1e-5, w2.shape).astype(np.float32) * np.abs(w2)
    assert np.array_equal(torch_w2.astype(np.float16).view(np.uint16), w2.view(np.uint16))
    s2 = np.ones(w2.shape, np.float32)
    heavy = heavy_positions(w2.shape, 3, seed=5)
    for p in heavy:
        s2[p] = HEAVY
    sfile = tmp_path / "s.safetensors"
    write_safetensors(sfile, {"Dense2.weight": torch_w2, "Dense2.weight.sensitivity": s2,
                              "unrelated": np.zeros(3, np.float32)})
    proc, rep = compress(oracle, src, tmp_path / "o.mlpackage", tmp_path / "r.json",
                         ["--nbits", "2", "--sensitivity", sfile])
    w = palettized_weights(rep)
    assert w["model_Dense2_weight_to_fp16"]["sensitivity"]["tensor"] == "Dense2.weight.sensitivity"
    assert w["model_Dense2_weight_to_fp16"]["sensitivity"]["match"] == "values"
    d1 = w["model_Dense1_weight_to_fp16"]["sensitivity"]
    assert d1 == {"tensor": None, "match": None, "weighted_sse": None,
                  "note": "no sensitivity tensor named 'model_Dense1_weight_to_fp16' or holding its values: "
                          "plain k-means"}
    assert rep["sensitivity"]["unused"] == ["unrelated"]
    stderr = proc.stderr.decode()
    assert f"sensitivity {sfile}: 1 weights weighted, 1 plain k-means (no tensor)" in stderr
    assert "1 sensitivity tensors applied to no weight: unrelated" in stderr
    dec = check_against_coremltools(tmp_path, src, tmp_path / "o.mlpackage", rep, {"Dense2.weight.sensitivity": s2})
    y = dec.get("", "main", "model_Dense2_weight_to_fp16")
    for p in heavy:
        assert y[p] == w2[p]
    # Plain k-means of Dense1 is what a run without sensitivities gives, bit for bit.
    _, plain = compress(oracle, src, tmp_path / "p.mlpackage", tmp_path / "p.json", ["--nbits", "2"])
    assert palettized_weights(plain)["model_Dense1_weight_to_fp16"]["sse"] == w["model_Dense1_weight_to_fp16"]["sse"]


def test_normalize(oracle, tmp_path):
    """--sensitivity-normalize as SKMPalettizer: divide by the maximum, zeros raised to the smallest
    non-zero value, at least 1e-12. Unnormalised, the zeros drop out and two elements decide the
    table; normalised, every element weighs at least 1e-3 and the plain error falls."""
    src = oracle.session_copy("fixture/linear_fp32")
    x = co.const_index(src)[0].get("", "main", "lin_weight_0")
    s = np.zeros(x.shape, np.float32)
    s[0, 0], s[0, 1] = 4.0, 4e-3
    expected = s.astype(np.float64) / s.max()
    expected[expected == 0] = expected[expected > 0].min()
    expected = np.maximum(expected, 1e-12)
    sfile = tmp_path / "s.safetensors"
    write_safetensors(sfile, {"lin_weight_0": s})
    _, raw = compress(oracle, src, tmp_path / "a.mlpackage", tmp_path / "a.json", ["--nbits", "2", "--sensitivity", sfile])
    _, norm = compress(oracle, src, tmp_path / "b.mlpackage", tmp_path / "b.json",
                       ["--nbits", "2", "--sensitivity", sfile, "--sensitivity-normalize"])
    assert raw["sensitivity"]["normalize"] is False
    assert norm["sensitivity"]["normalize"] is True
    a, b = palettized_weights(raw)["lin_weight_0"], palettized_weights(norm)["lin_weight_0"]
    assert b["sse"] < a["sse"]
    check_against_coremltools(tmp_path, src, tmp_path / "a.mlpackage", raw, {"lin_weight_0": s})
    check_against_coremltools(tmp_path, src, tmp_path / "b.mlpackage", norm, {"lin_weight_0": expected})


def bad_file_cases(shape):
    n = int(np.prod(shape))
    ok = np.ones(shape, np.float32)
    neg = ok.copy()
    neg.flat[7] = -1.0
    nan = ok.copy()
    nan.flat[3] = np.nan
    inf = ok.copy()
    inf.flat[0] = np.inf
    return {
        "negative": ({"lin_weight_0": neg}, None, "tensor 'lin_weight_0': element 7 is -1; sensitivities must be finite and >= 0"),
        "nan": ({"lin_weight_0": nan}, None, "tensor 'lin_weight_0': element 3 is NaN; sensitivities must be finite and >= 0"),
        "inf": ({"lin_weight_0": inf}, None, "tensor 'lin_weight_0': element 0 is Inf; sensitivities must be finite and >= 0"),
        "shape": ({"lin_weight_0": ok.reshape(-1)}, None,
                  f"tensor 'lin_weight_0' is F32 [{n}], but const 'lin_weight_0' is float32 [{shape[0]}, {shape[1]}]"),
        "bad_json": ({"lin_weight_0": ok}, '{"lin_weight_0": ', "header is not valid JSON (at byte 25)"),
        "lying_offsets": ({"lin_weight_0": ok},
                          json.dumps({"lin_weight_0": {"dtype": "F32", "shape": list(shape), "data_offsets": [4, 4 + 4 * n]}}),
                          f"tensor 'lin_weight_0': data_offsets [4, {4 + 4 * n}] past end of data ({4 * n} bytes)"),
        "bad_dtype": ({"lin_weight_0": ok},
                      json.dumps({"lin_weight_0": {"dtype": "F8", "shape": list(shape), "data_offsets": [0, 4 * n]}}),
                      "tensor 'lin_weight_0': dtype \"F8\" is not one of BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, "
                      "F32, U64, I64, F64"),
    }


@pytest.mark.parametrize("kind", ["negative", "nan", "inf", "shape", "bad_json", "lying_offsets", "bad_dtype", "truncated"])
def test_bad_sensitivity_files_are_refused(oracle, tmp_path, kind):
    src = oracle.session_copy("fixture/linear_fp32")
    shape = co.const_index(src)[0].get("", "main", "lin_weight_0").shape
    sfile = tmp_path / "s.safetensors"
    if kind == "truncated":
        write_safetensors(sfile, {"lin_weight_0": np.ones(shape, np.float32)})
        data = sfile.read_bytes()
        sfile.write_bytes(data[:-10])
        n = int(np.prod(shape))
        message = f"tensor 'lin_weight_0': data_offsets [0, {4 * n}] past end of data ({4 * n - 10} bytes)"
    else:
        tensors, header, message = bad_file_cases(shape)[kind]
        write_safetensors(sfile, tensors, header)
    out = tmp_path / "o.mlpackage"
    proc = run_cli(oracle, ["compress", src, "-o", out, "--report", tmp_path / "r.json", "--sensitivity", sfile],
                   kind, expect_rc=2)
    assert proc.stderr.decode() == f"palettize: {sfile}: {message}\n"
    assert not out.exists()
    assert not (tmp_path / "r.json").exists()


def test_normalize_needs_sensitivity(oracle, tmp_path):
    src = oracle.session_copy("fixture/linear_fp32")
    proc = run_cli(oracle, ["compress", src, "-o", tmp_path / "o.mlpackage", "--sensitivity-normalize"], "needs",
                   expect_rc=1)
    assert "--sensitivity" in proc.stderr.decode()
