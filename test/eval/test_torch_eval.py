"""palettize eval against PyTorch: models with seeded random weights, converted by coremltools'
ct.convert (convert_to="mlprogram") at compute_precision FLOAT32 and FLOAT16, run by
`palettize eval --inputs IN.npz --outputs OUT.npz`; their outputs must match torch's fp32 outputs
with PSNR (peak = max |torch output|) >= 50 dB for fp32 programs and >= 30 dB for fp16 programs.

Needs torch (the venv scripts/setup-torch creates); CTest runs this file in .venv-torch and reports
it skipped, saying why, when that venv is absent. Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv-torch/bin/python -m pytest -s test/eval

The models:
  - an MLP (linear, gelu, relu);
  - a CNN with batch norm (random running statistics) and two residual blocks, global mean;
  - a transformer encoder with hand-written attention: token and position embeddings (gather),
    layer_norm, q/k/v projections split into heads, softmax, gelu feed-forward, residuals.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

# numpy's AVX512_ICL 16-bit sort is wrong on some AVX-512 CPUs (scripts/oracle/npcompat.py).
os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/setup-torch)")
ct = pytest.importorskip("coremltools", reason="coremltools is not installed (scripts/setup-torch)")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from torch_models import op_types, psnr  # noqa: E402  (shared with test_torch_eval_ops.py)

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 300
MIN_PSNR = {"fp32": 50.0, "fp16": 30.0}


class MLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(32, 64)
        self.fc2 = torch.nn.Linear(64, 64)
        self.fc3 = torch.nn.Linear(64, 10)

    def forward(self, x):
        h = torch.nn.functional.gelu(self.fc1(x))
        return self.fc3(torch.relu(self.fc2(h)))


class Residual(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c)
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.bn2(self.conv2(h)))


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.bn = torch.nn.BatchNorm2d(16)
        self.blocks = torch.nn.Sequential(Residual(16), Residual(16))
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        h = self.blocks(torch.relu(self.bn(self.stem(x))))
        return self.head(h.mean(dim=(2, 3)))


class Attention(torch.nn.Module):
    def __init__(self, d, heads, tokens):
        super().__init__()
        self.heads, self.d, self.tokens = heads, d, tokens  # fixed: the trace keeps no shape arithmetic
        self.q = torch.nn.Linear(d, d)
        self.k = torch.nn.Linear(d, d)
        self.v = torch.nn.Linear(d, d)
        self.out = torch.nn.Linear(d, d)

    def forward(self, x):
        b, t, d = 1, self.tokens, self.d
        hd = d // self.heads

        def split(y):
            return y.reshape(b, t, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(hd)
        h = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(h.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(torch.nn.Module):
    def __init__(self, d, heads, tokens):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.attn = Attention(d, heads, tokens)
        self.ln2 = torch.nn.LayerNorm(d)
        self.ff1 = torch.nn.Linear(d, 4 * d)
        self.ff2 = torch.nn.Linear(4 * d, d)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff2(torch.nn.functional.gelu(self.ff1(self.ln2(x))))


class Transformer(torch.nn.Module):
    def __init__(self, vocab=100, d=32, heads=4, layers=2, tokens=16):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Parameter(torch.randn(tokens, d) * 0.1)
        self.layers = torch.nn.Sequential(*[EncoderLayer(d, heads, tokens) for _ in range(layers)])
        self.ln = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab)

    def forward(self, ids):
        return self.head(self.ln(self.layers(self.tok(ids) + self.pos)))


def randomize_norms(model, gen):
    """Batch and layer norms with random statistics and affine parameters, so none is an identity."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.LayerNorm)):
            m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
            m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=gen))


def make(name):
    """(model, example input as numpy, coremltools input type) with weights from a fixed seed."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(2)
    if name == "mlp":
        model, x = MLP(), rng.normal(size=(4, 32)).astype(np.float32)
    elif name == "cnn":
        model, x = CNN(), rng.normal(size=(1, 3, 32, 32)).astype(np.float32)
    else:
        model, x = Transformer(), rng.integers(0, 100, size=(1, 16)).astype(np.int32)
    model.eval()
    with torch.no_grad():
        randomize_norms(model, gen)
    return model, x, ct.TensorType(name="x", shape=x.shape, dtype=x.dtype.type)


# Ops each converted program must hold (fp32 and fp16 alike), so that each model tests what it is
# meant to. The CNN's batch norms are folded into its convolutions by the converter
# (fuse_conv_batchnorm), so no batch_norm op is left to run.
EXPECTED_OPS = {
    "mlp": {"linear", "gelu", "relu"},
    "cnn": {"conv", "relu", "add", "reduce_mean", "linear"},
    "transformer": {"gather", "layer_norm", "softmax", "gelu", "matmul", "transpose", "reshape", "linear"},
}


def convert(model, x, input_type, precision, path):
    example = torch.from_numpy(x.astype(np.int64) if x.dtype == np.int32 else x)
    traced = torch.jit.trace(model, example)
    mlmodel = ct.convert(traced, inputs=[input_type], convert_to="mlprogram",
                         compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                         skip_model_load=True)
    mlmodel.save(str(path))
    spec = mlmodel.get_spec()
    return [o.name for o in spec.description.output], op_types(spec)


@pytest.fixture(scope="session")
def palettize_bin():
    path = os.environ.get("PALETTIZE_BIN", str(ROOT / "build/apps/palettize/palettize"))
    assert os.access(path, os.X_OK), f"palettize binary not found at {path}"
    return path


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_eval_matches_torch(palettize_bin, tmp_path, name, precision):
    model, x, input_type = make(name)
    with torch.no_grad():
        ref = model(torch.from_numpy(x.astype(np.int64) if x.dtype == np.int32 else x)).numpy()
    package = tmp_path / f"{name}_{precision}.mlpackage"
    outputs, ops = convert(model, x, input_type, precision, package)
    assert len(outputs) == 1
    assert EXPECTED_OPS[name] <= ops, sorted(ops)
    inputs, out = tmp_path / "in.npz", tmp_path / "out.npz"
    np.savez(inputs, x=x)
    r = subprocess.run([palettize_bin, "eval", str(package), "--inputs", str(inputs), "--outputs", str(out)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        assert z.files == outputs
        got = z[outputs[0]]
    assert got.shape == ref.shape
    measured = psnr(ref, got)
    print(f"\n{name} {precision}: PSNR {measured:.1f} dB against torch fp32 "
          f"(max |error| {np.max(np.abs(ref - got)):.3g}, peak {np.max(np.abs(ref)):.3g})")
    assert measured >= MIN_PSNR[precision], f"{name} {precision}: {measured:.1f} dB"
