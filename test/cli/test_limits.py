"""Issue 12, items 7 and 8: parsers linear in their input (R3, R4) and numbers that stay right at
the ends of the float64 range (N1, N2), on float16 subnormals (N3), and an snr_db that is null only
for a lossless weight.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv/bin/python -m pytest test/cli/test_limits.py

The R cases are guards, not benchmarks: each run must finish within LINEAR_TIMEOUT, which the
quadratic parsers they replace exceeded by hours (100k tensors took over 120 s; 1M would take
over 3 h). Each prints its measured time (pytest -s shows it).

Reference errors are numpy's, computed from the decoded output on values scaled by a power of two
(exact), so that they neither overflow nor underflow where palettize's must not either.
"""

import json
import subprocess
import time

import numpy as np
import pytest

import checkpoint_files as ck

LINEAR_TIMEOUT = 60
TIMEOUT = 120


def run(bin_, *args, rc=0, timeout=TIMEOUT):
    proc = subprocess.run([bin_, *map(str, args)], capture_output=True, timeout=timeout)
    assert proc.returncode == rc, proc.stderr.decode(errors="replace")
    return proc


def timed(label, bin_, *args):
    t0 = time.monotonic()
    proc = run(bin_, *args, timeout=LINEAR_TIMEOUT)
    print(f"{label}: {time.monotonic() - t0:.2f} s")
    return proc


# --- R3: safetensors headers of 1M tensors ------------------------------------------------------

def many_tensors(path, n, name="layers.{}.bias", big=None):
    """A checkpoint of n one-element F32 tensors (not palettized: too small), then `big` (a float32
    array, named name.format(n)) if given; 1M tensors make a header of ~89 MB."""
    entries = [f'"{name.format(i)}": {{"dtype": "F32", "shape": [1], "data_offsets": [{4 * i}, {4 * i + 4}]}}'
               for i in range(n)]
    tail = b""
    if big is not None:
        tail = np.ascontiguousarray(big, np.float32).tobytes()
        entries.append(f'"{name.format(n)}": {{"dtype": "F32", "shape": {list(big.shape)}, '
                       f'"data_offsets": [{4 * n}, {4 * n + len(tail)}]}}')
    ck.write(path, {}, header_text="{" + ", ".join(entries) + "}")
    with open(path, "ab") as f:
        f.write(bytes(4 * n) + tail)


def test_R3_checkpoint_with_1M_tensors(palettize_bin, tmp_path):
    src = tmp_path / "big.safetensors"
    many_tensors(src, 1_000_000)
    out = timed("R3 checkpoint, 1M tensors (compress --dry-run)", palettize_bin, "compress", src, "-o",
                tmp_path / "out.safetensors", "--dry-run")
    assert b"1000000 kept" in out.stdout + out.stderr


def test_R3_sensitivity_file_with_1M_tensors(palettize_bin, mnist, tmp_path):
    sens = tmp_path / "s.safetensors"
    many_tensors(sens, 1_000_000)
    timed("R3 --sensitivity, 1M tensors (compress mnist)", palettize_bin, "compress", mnist, "-o",
          tmp_path / "out.mlpackage", "--sensitivity", sens, "--report", tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["sensitivity"]["unused"]) == 1_000_000


# --- R4: YAML configs of 200k keys --------------------------------------------------------------

def test_R4_op_name_configs_200k(palettize_bin, mnist, tmp_path):
    lines = ["config_type: OpPalettizerConfig", "global_config:", "  mode: kmeans", "  nbits: 4",
             "op_name_configs:"]
    for i in range(200_000):
        lines += [f"  op_{i}:", "    mode: kmeans", "    nbits: 2"]
    (tmp_path / "c.yaml").write_text("\n".join(lines) + "\n")
    timed("R4 op_name_configs, 200k keys (compress mnist)", palettize_bin, "compress", mnist, "-o",
          tmp_path / "out.mlpackage", "--config", tmp_path / "c.yaml")


def test_R4_module_name_configs_200k(palettize_bin, tmp_path):
    # Each module name must name a module of the checkpoint: 200k small ones and one to palettize.
    n = 200_000
    src = tmp_path / "m.safetensors"
    many_tensors(src, n, name="layers.{}.dense.weight", big=np.random.default_rng(0).normal(size=(64, 64)))
    lines = ["global_config:", "  n_bits: 4", "module_name_configs:"]
    for i in range(n + 1):
        lines += [f"  layers.{i}.dense:", "    n_bits: 2"]
    (tmp_path / "c.yaml").write_text("\n".join(lines) + "\n")
    timed("R4 module_name_configs, 200k keys (compress checkpoint)", palettize_bin, "compress", src, "-o",
          tmp_path / "out.safetensors", "--config", tmp_path / "c.yaml", "--report", tmp_path / "r.json")
    weights = json.loads((tmp_path / "r.json").read_text())["weights"]
    assert len(weights) == n + 1
    assert weights[-1]["status"] == "palettized" and weights[-1]["nbits"] == 2


# --- Numbers ------------------------------------------------------------------------------------

def clustered(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-3, 4, size=shape) * 0.25 + rng.normal(0, 0.03, size=shape)


def compress_one(bin_, tmp_path, weight, flags, sensitivity=None, name="lin.weight"):
    """Compresses a one-weight checkpoint; returns (report entry, decoded output as float64)."""
    src, out, rep = tmp_path / "w.safetensors", tmp_path / "o.safetensors", tmp_path / "r.json"
    ck.write(src, {name: weight})
    args = ["compress", src, "-o", out, "--force", "--report", rep, *flags]
    if sensitivity is not None:
        ck.write(tmp_path / "s.safetensors", {name: sensitivity})
        args += ["--sensitivity", tmp_path / "s.safetensors"]
    run(bin_, *args)
    (w,) = json.loads(rep.read_text())["weights"]
    _, tensors = ck.read(out)
    return w, tensors[name][1].astype(np.float64)


def exact_errors(x, d, s=None):
    """(sse, max abs error, snr_db, weighted sse) of x decoded as d, summed on x and d scaled by the
    power of two that brings max|x| to [0.5, 1), then scaled back."""
    x = np.asarray(x, np.float64)
    e = int(np.frexp(np.max(np.abs(x)))[1])
    xs, ds = np.ldexp(x, -e), np.ldexp(d, -e)
    sse = float(np.sum((xs - ds) ** 2))
    snr = 10 * np.log10(np.sum(xs ** 2) / sse) if sse > 0 else None
    wsse = None
    if s is not None:
        es = int(np.frexp(np.max(s))[1])
        wsse = float(np.ldexp(np.sum(np.ldexp(s, -es) * (xs - ds) ** 2), 2 * e + es))
    return float(np.ldexp(sse, 2 * e)), float(np.ldexp(np.max(np.abs(xs - ds)), e)), snr, wsse


N1_SCALES = {"huge": 1e154, "subnormal": 1e-310}
N1_FLAGS = {"per_tensor": ["--nbits", "4"], "per_channel_scale": ["--nbits", "4", "--per-channel-scale"]}


@pytest.mark.parametrize("flags", N1_FLAGS, ids=list(N1_FLAGS))
@pytest.mark.parametrize("scale", N1_SCALES, ids=list(N1_SCALES))
def test_N1_float64_extremes(palettize_bin, tmp_path, scale, flags):
    base = clustered((64, 64))
    x = base * N1_SCALES[scale]
    w, d = compress_one(palettize_bin, tmp_path, x, N1_FLAGS[flags])
    assert w["status"] == "palettized", w["reason"]
    assert np.all(np.isfinite(d))
    sse, max_err, snr, _ = exact_errors(x, d)
    assert snr is not None and w["snr_db"] == pytest.approx(snr, abs=1e-9)
    assert w["max_abs_error"] == pytest.approx(max_err, rel=1e-12)
    assert w["sse"] == pytest.approx(sse, rel=1e-9)
    # The same clustering as the ordinary-range weight: k-means is scale-free, so the SNR matches.
    w1, d1 = compress_one(palettize_bin, tmp_path, base, N1_FLAGS[flags])
    assert w["snr_db"] == pytest.approx(w1["snr_db"], abs=1e-6)


def test_N1_float64_errors_past_the_largest_double_are_refused(palettize_bin, tmp_path):
    x = clustered((64, 64)) * 1e300  # the squared errors sum to ~1e600
    w, d = compress_one(palettize_bin, tmp_path, x, ["--nbits", "4"])
    assert w["status"] == "skipped"
    assert w["reason"] == (f"its errors reach past the largest double (largest |value| {np.max(np.abs(x)):.3g}); "
                           "not palettized")
    assert np.array_equal(d, x)  # kept as it was


# Powers of two, so that "the same tables" can be asked bit for bit: 2^1022 brings the largest
# sensitivity to ~9e307, 2^-997 the smallest to ~4e-301.
N2_SCALES = {"1e308": 2.0 ** 1022, "1e-300": 2.0 ** -997}


@pytest.mark.parametrize("scale", N2_SCALES, ids=list(N2_SCALES))
def test_N2_extreme_sensitivities(palettize_bin, tmp_path, scale):
    # Small errors (weights ~0.01) so that the weighted sum of 1e308 sensitivities fits a double.
    x = (clustered((64, 64), seed=1) * 0.01).astype(np.float32)
    s = np.random.default_rng(2).uniform(0.5, 1.9, size=(64, 64))
    w, d = compress_one(palettize_bin, tmp_path, x, ["--nbits", "3"], sensitivity=s * N2_SCALES[scale])
    w1, d1 = compress_one(palettize_bin, tmp_path, x, ["--nbits", "3"], sensitivity=s)
    assert w["status"] == w1["status"] == "palettized"
    assert np.array_equal(d, d1)  # the same tables as with the sensitivities scaled to ~1
    assert w["snr_db"] == w1["snr_db"]
    weighted = w["sensitivity"]["weighted_sse"]
    assert weighted is not None and np.isfinite(weighted)
    _, _, _, ref = exact_errors(x, d, s * N2_SCALES[scale])
    assert weighted == pytest.approx(ref, rel=1e-9)
    assert weighted == pytest.approx(w1["sensitivity"]["weighted_sse"] * N2_SCALES[scale], rel=1e-9)


def test_N2_weighted_sum_past_the_largest_double_is_refused(palettize_bin, tmp_path):
    x = clustered((64, 64), seed=1).astype(np.float32)
    s = np.full((64, 64), 1e308)
    w, d = compress_one(palettize_bin, tmp_path, x, ["--nbits", "3"], sensitivity=s)
    assert w["status"] == "skipped"
    assert w["reason"] == "its sensitivity-weighted squared errors sum past the largest double; not palettized"
    assert np.array_equal(d, x)


N3_FLAGS = {"4bit": ["--nbits", "4"], "8bit": ["--nbits", "8"], "grouped": ["--nbits", "4", "--granularity",
            "per_grouped_channel", "--group-size", "8"], "int8_lut": ["--nbits", "4", "--lut-dtype", "int8"],
            "uint8_lut": ["--nbits", "4", "--lut-dtype", "uint8"]}


@pytest.mark.parametrize("flags", N3_FLAGS, ids=list(N3_FLAGS))
@pytest.mark.parametrize("exponent", [-18, -21, -23])
def test_N3_uniform_on_float16_subnormals(palettize_bin, tmp_path, exponent, flags):
    # float16 subnormals are below 2^-14; these weights hold a few dozen of them at most.
    g = (np.random.default_rng(3).normal(0, 1, size=(64, 64)) * 2.0 ** exponent).astype(np.float16)
    assert np.max(np.abs(g.astype(np.float64))) < 2.0 ** -14
    args = ["--mode", "uniform", *N3_FLAGS[flags]]
    w, d = compress_one(palettize_bin, tmp_path, g, args)
    scaled = (g.astype(np.float64) * 2.0 ** 20).astype(np.float16)  # exact: normal float16s
    w20, d20 = compress_one(palettize_bin, tmp_path, scaled, args)
    assert w["status"] == w20["status"] == "palettized"
    _, _, snr, _ = exact_errors(g, d)
    _, _, snr20, _ = exact_errors(scaled, d20)
    print(f"N3 2^{exponent} {flags}: SNR {snr} dB, scaled by 2^20: {snr20} dB")
    # As good as the scaled weight's table, up to the rounding of the entries to the subnormal grid
    # (2^-24), which may even hold every value exactly. (Before: -6 dB where scaled gave 23 dB.)
    assert snr is None or snr >= snr20 - 3
    assert w["snr_db"] == (None if snr is None else pytest.approx(snr, abs=1e-9))
    if flags in ("4bit", "8bit"):
        # The table is the scaled weight's table before rounding, scaled back, rounded to float16,
        # and every element takes its nearest entry.
        k = 2 ** int(N3_FLAGS[flags][1])
        x = g.astype(np.float64).ravel()
        lo, hi = np.min(x), np.max(x)
        table = (lo + np.arange(k) * (hi - lo) / (k - 1)).astype(np.float16).astype(np.float64)
        assert set(np.unique(d)) <= set(table)
        nearest = np.min(np.abs(x[:, None] - table[None, :]), axis=1)
        assert np.array_equal(np.abs(x - d.ravel()), nearest)


def test_snr_null_only_when_lossless(palettize_bin, tmp_path):
    # Four distinct values in a 2-bit table: lossless, sse exactly 0, snr_db null.
    x = np.random.default_rng(4).integers(-2, 2, size=(64, 64)).astype(np.float32) * 0.5
    w, d = compress_one(palettize_bin, tmp_path, x, ["--nbits", "2"])
    assert np.array_equal(d, x) and w["sse"] == 0 and w["snr_db"] is None
    # float64 subnormals whose sse rounds to 0.0: not lossless, so snr_db is a number.
    y = clustered((64, 64)) * 1e-310
    w, d = compress_one(palettize_bin, tmp_path, y, ["--nbits", "4"])
    assert not np.array_equal(d, y)
    assert w["sse"] == 0.0 and isinstance(w["snr_db"], float) and np.isfinite(w["snr_db"])
    # float64 values whose squares overflow: a number, not null.
    w, d = compress_one(palettize_bin, tmp_path, clustered((64, 64)) * 1e154, ["--nbits", "4", "--per-channel-scale"])
    assert isinstance(w["snr_db"], float) and np.isfinite(w["snr_db"])
