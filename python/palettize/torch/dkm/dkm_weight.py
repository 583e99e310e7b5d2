"""The parametrization that soft-assigns one module's weight to its tables (soft_kmeans.py), and
the hard assignment `finalize` leaves in its place.

Layout (docs/format.md section 9, channel axis 0): a weight [C, ...] is viewed as [C, R]; table t
holds channels [t G, (t+1) G) (G = group_size, or C for per_tensor); with cluster_dim D the D
consecutive channels j D .. j D + D - 1 at one column r form a point, points ordered (j, r)
row-major, which is the order of the packed indices. With a per-channel scale, the weight is
divided by s[r] = max_c |W[c, r]| (1 where that is 0), fixed when palettization starts, before
clustering, and multiplied back after: the form Core ML's constexpr_blockwise_shift_scale
applies to a LUT (scale shaped like the weight with 1 on the channel axis)."""

import numpy as np
import torch

from .kmeans_init import init_centroids
from .soft_kmeans import soft_assign, unique_points


def table_points(w2, t, G, D):
    """Points [G/D * R, D] of table t of w2 [C, R]."""
    block = w2[t * G:(t + 1) * G]
    return block.reshape(G // D, D, -1).permute(0, 2, 1).reshape(-1, D)


def from_points(points, G, D, R):
    """Inverse of table_points for one table: [G, R]."""
    return points.reshape(G // D, R, D).permute(0, 2, 1).reshape(G, R)


class DKMWeight(torch.nn.Module):
    """weight -> its soft-palettized value (or the weight itself while disabled)."""

    def __init__(self, cfg, shape, efficient=True):
        super().__init__()
        C = shape[0]
        self.n_bits = cfg["n_bits"]
        self.D = cfg["cluster_dim"]
        self.G = cfg["group_size"] if cfg["granularity"] == "per_grouped_channel" else C
        if C % self.G or self.G % self.D:
            raise ValueError(f"weight of shape {list(shape)}: {C} channels do not split into groups of {self.G} "
                             f"and vectors of {self.D}")
        self.T = C // self.G
        self.temperature = float(cfg["palett_tau"])
        self.iterations = int(cfg["kmeans_max_iter"])
        self.per_channel_scale = bool(cfg["enable_per_channel_scale"])
        self.table_dtype = cfg["table_dtype"]
        self.lut_int8 = bool(cfg.get("lut_int8", False))
        self.efficient = efficient
        self.register_buffer("enabled", torch.zeros((), dtype=torch.bool))
        self.register_buffer("centroids", torch.zeros(self.T, 2 ** self.n_bits, self.D))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.register_buffer("scale", torch.ones((1,) + tuple(shape[1:])))

    def _start(self, w):
        """Fixes the scale and the initial centroids: the exact k-means of each table's distinct
        values."""
        with torch.no_grad():
            if self.per_channel_scale:
                s = w.abs().amax(dim=0, keepdim=True)
                self.scale.copy_(torch.where(s == 0, torch.ones_like(s), s))
            w2 = (w / self.scale).reshape(w.shape[0], -1) if self.per_channel_scale else w.reshape(w.shape[0], -1)
            for t in range(self.T):
                pts = table_points(w2, t, self.G, self.D).to(torch.float16).to(torch.float64)
                uniq, counts = unique_points(pts, return_counts=True)
                c = init_centroids(uniq.numpy(), counts.numpy(), 2 ** self.n_bits)
                self.centroids[t].copy_(torch.from_numpy(c))
            self.initialised.fill_(True)

    def forward(self, w):
        if not bool(self.enabled):
            return w
        if not bool(self.initialised):
            self._start(w.detach())
        ws = w / self.scale if self.per_channel_scale else w
        w2 = ws.reshape(w.shape[0], -1)
        R = w2.shape[1]
        outs = []
        for t in range(self.T):
            out, c = soft_assign(table_points(w2, t, self.G, self.D), self.centroids[t], self.temperature,
                                 self.iterations, self.efficient)
            self.centroids[t].copy_(c)
            outs.append(from_points(out, self.G, self.D, R))
        out = torch.cat(outs).reshape(w.shape)
        if self.table_dtype != torch.float32:
            out = out.to(self.table_dtype).to(w.dtype)
        return out * self.scale.to(w.dtype) if self.per_channel_scale else out

    @torch.no_grad()
    def hard_assign(self, w):
        """(weight with each point set to its nearest table entry, tables [T, K, D] in w's dtype,
        indices [C/D * R] uint8 in packed order, scale or None, int8 form or None). With int8
        tables the entries are round(lut_scale[t] * q) and the int8 form is (q [T, K, D] int8,
        lut_scale [T] in w's dtype)."""
        if not bool(self.initialised):
            self._start(w)
        scale = self.scale.to(w.dtype) if self.per_channel_scale else None
        ws = w / scale if scale is not None else w
        w2 = ws.reshape(w.shape[0], -1)
        R = w2.shape[1]
        luts = self.centroids.to(self.table_dtype).to(w.dtype)
        quantized = None
        if self.lut_int8:
            quantized = quantize_int8(luts)
            q, lut_scale = quantized
            luts = (lut_scale.to(torch.float64)[:, None, None] * q.to(torch.float64)).to(w.dtype)
        parts, idx = [], []
        for t in range(self.T):
            pts = table_points(w2, t, self.G, self.D)
            lab = torch.cdist(pts.to(torch.float64), luts[t].to(torch.float64)).argmin(dim=1)
            idx.append(lab)
            parts.append(from_points(luts[t][lab], self.G, self.D, R))
        out = torch.cat(parts).reshape(w.shape)
        if scale is not None:
            out = scale * out  # one rounding to w's dtype of an exact product
        return out, luts, torch.cat(idx).to(torch.uint8), scale, quantized


# The smallest positive value of each dtype (subnormal), as table.cc's SmallestPositive.
_SMALLEST = {torch.float16: 2.0**-24, torch.bfloat16: 2.0**-133, torch.float32: 2.0**-149,
             torch.float64: 5e-324}


def quantize_int8(luts):
    """(q [T, K, D] int8, lut_scale [T] in luts' dtype) of tables `luts` [T, K, D]: the rule of the
    engine's int8 LUTs (lib/palettizer/table.cc), symmetric, lut_scale = max |entry| / 127 rounded
    to the dtype (1 for an all-zero table, the smallest positive value if it rounds to 0), q the
    entry / lut_scale rounded half to even and clamped to [-128, 127]."""
    x = luts.to(torch.float64)
    m = x.abs().amax(dim=(1, 2))
    scale = torch.where(m > 0, m / 127.0, torch.ones_like(m)).to(luts.dtype)
    scale = torch.where(scale == 0, torch.full_like(scale, _SMALLEST[luts.dtype]), scale)
    q = torch.round(x / scale.to(torch.float64)[:, None, None]).clamp(-128, 127).to(torch.int8)
    return q, scale


def decode(luts, indices, scale, shape, G, D):
    """The weight a table, its indices and scale decode to (section 9's rule), for checks."""
    C = shape[0]
    R = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    per_table = (G // D) * R
    parts = []
    for t in range(C // G):
        lab = indices[t * per_table:(t + 1) * per_table].long()
        parts.append(from_points(luts[t][lab], G, D, R))
    out = torch.cat(parts).reshape(shape)
    return scale * out if scale is not None else out
