"""palettize's evaluator (`palettize eval --inputs IN.npz --outputs OUT.npz`) against torch on small models
with seeded random weights, converted by coremltools at fp32 and fp16 compute precision. Each
model exercises op families: depthwise/SE (conv, max_pool ceil_mode, avg_pool without padding,
sigmoid_hard, upsample_bilinear both ways), a 1-D U-Net with a GRU (conv_transpose,
instance_norm, torch's GRU as a while_loop with gather/scatter), a 2-layer bidirectional lstm,
an iOS18 transformer block (scaled_dot_product_attention with a float mask, layer_norm, gelu),
and a scripted data-dependent loop and branch (while_loop, cond). Prints each output's PSNR."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import torch_models  # noqa: E402

MIN_PSNR = {"fp32": 50.0, "fp16": 30.0}
# The op each model must contain, so that a converter change cannot silently drop the coverage.
MUST_HAVE = {
    "depthwise_se": {"upsample_bilinear", "max_pool", "avg_pool", "sigmoid_hard"},
    "unet1d_gru": {"conv_transpose", "instance_norm", "while_loop", "scatter"},
    "lstm": {"lstm"},
    "transformer": {"scaled_dot_product_attention"},
    "scripted_control": {"while_loop", "cond"},
}


ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def palettize_bin():
    path = os.environ.get("PALETTIZE_BIN", str(ROOT / "build/apps/palettize/palettize"))
    assert os.access(path, os.X_OK), f"palettize binary not found at {path}"
    return path


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", sorted(MUST_HAVE))
def test_eval_matches_torch(palettize_bin, tmp_path, name, precision):
    path = tmp_path / f"{name}_{precision}.mlpackage"
    inputs, outputs, ref = torch_models.convert(name, precision, path)
    ops = torch_models.ops_of(path)
    assert MUST_HAVE[name] <= ops, sorted(ops)
    in_npz, out_npz = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(in_npz, **{k: v.astype(np.float32) for k, v in inputs.items()})
    r = subprocess.run([palettize_bin, "eval", str(path), "--inputs", str(in_npz), "--outputs", str(out_npz)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(outputs) == len(ref)
    with np.load(out_npz) as z:
        assert sorted(z.files) == sorted(outputs)
        got_all = {k: z[k] for k in z.files}
    for out, want in zip(outputs, ref):
        got = got_all[out]
        assert got.size == want.size, (out, got.shape, want.shape)
        db = torch_models.psnr(want, got)
        print(f"\n{name} {precision} {out}: PSNR {db:.1f} dB (min {MIN_PSNR[precision]})")
        assert db >= MIN_PSNR[precision], (name, precision, out, db)
