"""Small PyTorch models with seeded random weights, converted by coremltools, for checking
`palettize eval` against torch: each builder returns (module, example inputs, conversion
keyword arguments)."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class DepthwiseSE(nn.Module):
    """Depthwise-separable convolutions with squeeze-excite, hardswish and bilinear upsampling."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.Hardswish())
        self.se1 = nn.Conv2d(16, 4, 1)
        self.se2 = nn.Conv2d(4, 16, 1)
        self.pw = nn.Conv2d(16, 8, 1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)

    def forward(self, x):
        y = self.dw(self.stem(x))
        s = F.adaptive_avg_pool2d(y, 1)
        y = y * F.hardsigmoid(self.se2(F.relu(self.se1(s))))
        y = self.pw(y)
        a = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        b = F.interpolate(self.pool(y), scale_factor=2, mode="bilinear", align_corners=True)
        return a, F.avg_pool2d(b, 3, stride=1, padding=1, count_include_pad=False)


class UNet1dGru(nn.Module):
    """A 1-D U-Net whose bottleneck runs a GRU; conv_transpose upsamples."""

    def __init__(self):
        super().__init__()
        self.down1 = nn.Conv1d(4, 8, 3, padding=1)
        self.down2 = nn.Conv1d(8, 16, 4, stride=2, padding=1)
        self.gru = nn.GRU(16, 16)
        self.up = nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1)
        self.out = nn.Conv1d(16, 4, 3, padding=1)
        self.norm = nn.InstanceNorm1d(8, affine=True)

    def forward(self, x):
        d1 = F.relu(self.down1(x))
        d2 = F.relu(self.down2(d1))
        seq, _ = self.gru(d2.permute(2, 0, 1))
        u = self.norm(self.up(seq.permute(1, 2, 0)))
        return self.out(torch.cat([u, d1], dim=1))


class Lstm(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 12, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(24, 5)

    def forward(self, x):
        y, (h, c) = self.lstm(x)
        return self.head(y), h, c


class TransformerBlock(nn.Module):
    """Pre-norm self-attention with F.scaled_dot_product_attention and a float mask, then a GELU MLP."""

    def __init__(self, dim=32, heads=4, tokens=8):
        super().__init__()
        self.heads, self.dim, self.tokens = heads, dim, tokens
        self.n1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.n2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x, mask):
        b, t, d = 1, self.tokens, self.dim  # fixed: traced shapes of x would become int casts
        q, k, v = self.qkv(self.n1(x)).chunk(3, dim=-1)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.n2(x))


class ScriptedControl(nn.Module):
    """A data-dependent loop and branch (torch.jit.script): halve until small, then pick a branch."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(6, 6)

    def forward(self, x):
        y = self.lin(x)
        i = 0
        while bool(y.abs().max() > 0.5) and i < 20:
            y = y * 0.5 + 0.01
            i += 1
        if bool(y.sum() > 0):
            z = torch.relu(y) * 2.0
        else:
            z = torch.tanh(y) - 1.0
        return z


def build(name):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    import coremltools as ct

    if name == "depthwise_se":
        m = DepthwiseSE()
        for bn in (m.stem[1], m.dw[1]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 1.5)
        inputs = {"x": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)}
        kw = {}
    elif name == "unet1d_gru":
        m = UNet1dGru()
        inputs = {"x": rng.standard_normal((1, 4, 16)).astype(np.float32)}
        kw = {}
    elif name == "lstm":
        m = Lstm()
        inputs = {"x": rng.standard_normal((1, 10, 8)).astype(np.float32)}
        kw = {}
    elif name == "transformer":
        m = TransformerBlock()
        mask = np.triu(np.full((8, 8), -1e4, np.float32), 1)  # causal, as an additive float mask
        inputs = {"x": rng.standard_normal((1, 8, 32)).astype(np.float32), "mask": mask}
        kw = {"minimum_deployment_target": ct.target.iOS18}
    elif name == "scripted_control":
        m = ScriptedControl()
        with torch.no_grad():
            m.lin.weight.mul_(4.0)
        inputs = {"x": rng.standard_normal((1, 6)).astype(np.float32)}
        kw = {}
    else:
        raise ValueError(name)
    m.eval()
    return m, inputs, kw


def convert(name, precision, path):
    """Converts model `name` at `precision` ("fp32" or "fp16") to `path`; returns torch's outputs
    (float32 arrays in the model's output order) and the inputs."""
    import coremltools as ct

    m, inputs, kw = build(name)
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    with torch.no_grad():
        ref = m(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    traced = torch.jit.script(m) if name == "scripted_control" else torch.jit.trace(m, args)
    mlmodel = ct.convert(
        traced,
        inputs=[ct.TensorType(name=k, shape=v.shape, dtype=np.float32) for k, v in inputs.items()],
        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
        convert_to="mlprogram",
        **kw,
    )
    mlmodel.save(str(path))
    outs = [o.name for o in mlmodel.get_spec().description.output]
    return inputs, outs, [r.detach().numpy().astype(np.float32) for r in ref]


def psnr(ref, got):
    ref = np.asarray(ref, np.float64)
    got = np.asarray(got, np.float64).reshape(ref.shape)
    mse = np.mean((ref - got) ** 2)
    peak = np.max(np.abs(ref))
    return float("inf") if mse == 0 else float(20 * np.log10(peak / np.sqrt(mse)))


def op_types(spec):
    """The op types of a model spec's ML Program (every function, nested blocks included)."""
    types = set()

    def walk(block):
        for op in block.operations:
            types.add(op.type)
            for b in op.blocks:
                walk(b)

    for f in spec.mlProgram.functions.values():
        for b in f.block_specializations.values():
            walk(b)
    return types


def ops_of(path):
    """The op types of the converted program at `path`."""
    import coremltools as ct

    return op_types(ct.utils.load_spec(str(path)))
