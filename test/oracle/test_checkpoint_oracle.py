"""Checkpoints and packages give the same tables (issue 7, "Done when").

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv/bin/python -m pytest test/oracle/test_checkpoint_oracle.py

For a const of a real model or fixture, a safetensors checkpoint holds its values (same dtype) as
tensor `<const>.weight`, and both get the same sensitivities (by name) and the same flags.
`compress` of the package (decompressed by coremltools) and of the checkpoint (dense, and
--packed) must then agree bit for bit: the same table entries, the same decompressed weight, the
same reported errors.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import compress_oracle as co
from oracle_conftest import SUBPROCESS_TIMEOUT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
import checkpoint_files as ck  # noqa: E402

CASES = [
    ("shared/mnist", "model_Dense1_weight_to_fp16", ["--nbits", "4"]),
    ("shared/mnist", "model_Dense1_weight_to_fp16",
     ["--nbits", "3", "--granularity", "per_grouped_channel", "--group-size", "100"]),
    ("fixture/linear_fp32", "lin_weight_0", ["--nbits", "4", "--granularity", "per_grouped_channel",
                                             "--group-size", "16"]),
    ("fixture/conv", "conv1_weight_0", ["--nbits", "2", "--per-channel-scale"]),
    ("fixture/conv", "conv1_weight_0", ["--nbits", "4", "--lut-dtype", "int8"]),
    ("fixture/conv", "conv1_weight_0", ["--nbits", "2", "--cluster-dim", "2"]),
]


def run_cli(oracle, *args):
    cmd = [oracle._bin("PALETTIZE_BIN")] + [str(a) for a in args]
    proc = subprocess.run(cmd, capture_output=True, timeout=SUBPROCESS_TIMEOUT)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}"


def package_lut(pkg, const):
    """The table of `const` as coremltools decompresses it (before any per-channel scale),
    flattened."""
    proto_ops = co.proto_op_index(pkg)[("", "main")]
    vars_, _ = co.pymil_vars(pkg)
    info = co.lut_info(proto_ops, vars_[("", "main")], const)
    assert "error" not in info, info.get("error")
    lut_var = vars_[("", "main")][info["lut_op"].outputs[0].name].op.lut
    return np.asarray(co.materialize(lut_var)).reshape(-1)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[f"{m}:{' '.join(f)}" for m, _, f in CASES])
def test_checkpoint_and_package_agree(oracle, tmp_path, case):
    model_id, const, flags = CASES[case]
    src = oracle.session_copy(model_id)
    x = co.const_index(src)[0].get("", "main", const)
    rng = np.random.default_rng(case)
    s = rng.exponential(1.0, x.shape).astype(np.float32)
    tensor = const + ".weight"
    ck.write(tmp_path / "pkg_s.safetensors", {const: s})
    ck.write(tmp_path / "ckpt_s.safetensors", {tensor: s})
    ck.write(tmp_path / "m.safetensors", {tensor: x})

    run_cli(oracle, "compress", src, "-o", tmp_path / "o.mlpackage", "--report", tmp_path / "o.json",
            "--sensitivity", tmp_path / "pkg_s.safetensors", *flags)
    run_cli(oracle, "compress", tmp_path / "m.safetensors", "-o", tmp_path / "d.safetensors", "--report",
            tmp_path / "d.json", "--sensitivity", tmp_path / "ckpt_s.safetensors", *flags)
    run_cli(oracle, "compress", tmp_path / "m.safetensors", "-o", tmp_path / "p.safetensors", "--packed",
            "--sensitivity", tmp_path / "ckpt_s.safetensors", *flags)

    pw = {w["name"]: w for w in json.loads((tmp_path / "o.json").read_text())["weights"]}[const]
    cw = {w["name"]: w for w in json.loads((tmp_path / "d.json").read_text())["weights"]}[tensor]
    assert pw["status"] == cw["status"] == "palettized"
    assert pw["sensitivity"]["note"] == cw["sensitivity"]["note"] == ""
    for key in ("nbits", "luts", "sse", "max_abs_error", "snr_db"):
        assert pw[key] == cw[key], key
    assert pw["sensitivity"]["weighted_sse"] == cw["sensitivity"]["weighted_sse"]

    dec, _ = co.decompressed_index(tmp_path / "o.mlpackage", tmp_path)
    y_pkg = dec.get("", "main", const)
    y_dense = ck.read(tmp_path / "d.safetensors")[1][tensor][1]
    assert y_pkg.dtype == y_dense.dtype and y_pkg.shape == y_dense.shape
    assert y_pkg.tobytes() == y_dense.tobytes()

    meta, packed = ck.read(tmp_path / "p.safetensors")
    assert ck.decode_packed(packed, meta, tensor).tobytes() == y_dense.tobytes()
    lut_pkg = package_lut(tmp_path / "o.mlpackage", const)
    lut_ckpt = ck.table(packed, meta, tensor).reshape(-1)
    assert lut_pkg.dtype == lut_ckpt.dtype
    assert lut_pkg.tobytes() == lut_ckpt.tobytes()
