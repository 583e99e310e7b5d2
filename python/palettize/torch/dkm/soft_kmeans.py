"""The differentiable k-means step of one table, and a memory-efficient autograd function for it.

For points x (a table's weights, or its cluster_dim-vectors) and centroids C_0 (held from the
previous forward, not differentiated), `iterations` soft k-means steps run

    A_t = clamp(softmax(-|x - C_t|^2 / temperature), min=eps)      # attention, [n, K]
    C_{t+1} = (A_t^T x) / sum_rows(A_t)                              # centroids

and the table's weights become A_{T-1} C_T: every point is a soft mix of the centroids, and the
gradient reaches each point both directly and through the centroids (coremltools' DKM).

The naive form holds several n x K attention maps for backward, so its memory grows with
2^n_bits. `UniqueSoftKMeans` attends over the distinct values u_j of the half-precision points
instead, each weighted by its count n_j (equal points have equal rows of A): forward keeps only
u, the counts and the index map inv (point i is u[inv[i]]), and backward recomputes the small
U x K graph. The gradient of point i is

    dL/dx_i = J(u_j)^T g_i + (d/du_j sum_m S_m . out(u_m)) / n_j,     j = inv[i]

where g_i is the incoming gradient, S_j the sum of g_i over the points of u_j, J the Jacobian of
a point's output with respect to its own value with the centroids held fixed, and the second
term the path through the centroids (u_j stands for n_j equal points, so it receives n_j times one
point's share). For U distinct values (at most 65536 scalars in half precision) the extra memory
is O(U K + n), whatever n is."""

import torch

EPS = 1e-7  # coremltools' zero_threshold: attention floor


def unique_points(points, **kwargs):
    """torch.unique over the rows of points [P, D]: (distinct rows [U, D] ascending, then whatever
    `kwargs` asks for: inverse [P], counts [U]). For D 1 the flat form: the same result, but on
    CPU torch.unique(dim=0) sorts through a path that costs about ten times the memory (260 MB
    against 27 MB for 1M half-precision values, BENCHMARKS.md "palettize.torch")."""
    if points.shape[1] != 1:
        return torch.unique(points, dim=0, **kwargs)
    out = torch.unique(points.reshape(-1), sorted=True, **kwargs)
    if not isinstance(out, tuple):
        return out[:, None]
    return (out[0][:, None],) + tuple(out[1:])


def soft_kmeans(x, counts, centroids, temperature, iterations):
    """(output [P, D], final centroids [K, D]) for points x [P, D] of weights `counts` [P] (None:
    all 1), from `centroids` [K, D]. Differentiable in x."""
    c = centroids
    w = None if counts is None else counts.to(x.dtype)[:, None]
    attention = None
    for _ in range(max(1, iterations)):
        dist = torch.cdist(x, c).square() if x.shape[1] > 1 else (x - c.T).square()
        attention = torch.softmax(-dist / temperature, dim=-1).clamp(min=EPS)
        weighted = attention if w is None else attention * w
        c = (weighted.T @ x) / weighted.sum(0)[:, None]
    return attention @ c, c


def _split_forward(local, shared, counts, centroids, temperature, iterations):
    """The output of points `local` with the centroids computed from `shared` (the same values):
    separating the two lets backward take the direct and the centroid paths apart."""
    c = centroids
    w = counts.to(shared.dtype)[:, None]
    for _ in range(max(1, iterations)):
        dist_s = torch.cdist(shared, c).square() if shared.shape[1] > 1 else (shared - c.T).square()
        att_s = torch.softmax(-dist_s / temperature, dim=-1).clamp(min=EPS)
        c_prev = c
        c = ((att_s * w).T @ shared) / (att_s * w).sum(0)[:, None]
    dist_l = torch.cdist(local, c_prev).square() if local.shape[1] > 1 else (local - c_prev.T).square()
    att_l = torch.softmax(-dist_l / temperature, dim=-1).clamp(min=EPS)
    return att_l @ c, c


class UniqueSoftKMeans(torch.autograd.Function):
    """points [P, D] (any float dtype) -> (their soft-assigned values [P, D] in float32, the final
    centroids [K, D]); the attention runs over the distinct half-precision points."""

    @staticmethod
    def forward(ctx, points, centroids, temperature, iterations):
        half = points.detach().to(torch.float16)
        uniq, inv, counts = unique_points(half, return_inverse=True, return_counts=True)
        u = uniq.to(torch.float32)
        with torch.no_grad():
            out_u, c = soft_kmeans(u, counts, centroids.to(torch.float32), temperature, iterations)
        ctx.save_for_backward(u, inv, counts, centroids)
        ctx.temperature, ctx.iterations = temperature, iterations
        ctx.mark_non_differentiable(c)
        return out_u[inv], c

    @staticmethod
    def backward(ctx, grad_out, _grad_c):
        u, inv, counts, centroids = ctx.saved_tensors
        d = u.shape[1]
        g = grad_out.to(torch.float32)
        summed = torch.zeros_like(u).index_add_(0, inv, g)
        with torch.enable_grad():
            local = u.detach().requires_grad_(True)
            shared = u.detach().requires_grad_(True)
            out, _ = _split_forward(local, shared, counts, centroids.to(torch.float32), ctx.temperature,
                                    ctx.iterations)
            # Through the centroids: one backward of the count-summed gradients.
            (through_c,) = torch.autograd.grad((out * summed).sum(), shared, retain_graph=True)
            # Direct: out_j depends on local_j alone, so row d of each point's Jacobian is the
            # gradient of sum_j out_j[d].
            jac = []
            for r in range(d):
                (row,) = torch.autograd.grad(out[:, r].sum(), local, retain_graph=r + 1 < d)
                jac.append(row)
        jac = torch.stack(jac, dim=1)  # [U, D(out), D(in)]
        direct = torch.einsum("pd,pde->pe", g, jac[inv]) if d > 1 else g * jac[inv, 0]
        grad = direct + (through_c / counts.to(torch.float32)[:, None])[inv]
        return grad.to(grad_out.dtype), None, None, None


def soft_assign(points, centroids, temperature, iterations, efficient=True):
    """(soft-assigned points [P, D], new centroids [K, D] detached)."""
    if efficient:
        out, c = UniqueSoftKMeans.apply(points, centroids.detach().clone(), temperature, iterations)
        return out.to(points.dtype), c.detach()
    out, c = soft_kmeans(points.to(torch.float32), None, centroids.detach().to(torch.float32), temperature,
                         iterations)
    return out.to(points.dtype), c.detach()
