"""Centroid initialisation for differentiable k-means: the exact 1-D k-means of a table's
distinct values weighted by their counts (the optimum of sum count * (value - centroid)^2), and
weighted k-means++ with Lloyd iterations for vectors (cluster_dim > 1).

The 1-D optimum is the classic dynamic programme over sorted values, D[m][i] = min_j D[m-1][j] +
cost(j, i), whose argmin is monotone in i; each layer is solved by divide and conquer with every
recursion level vectorised in numpy, so a layer costs O(U log U) for U distinct values. The
integrator may route `init_centroids` to the C++ extension (lib/cluster/kmeans1d); the contract
is the function's: ascending values, positive counts, k entries back."""

import numpy as np


def _layer(prev, cost, n):
    """best[i], arg[i] for i in 1..n: min over j < i of prev[j] + cost(j, i), by divide and
    conquer over the monotone argmin, one numpy pass per recursion level."""
    best = np.full(n + 1, np.inf)
    arg = np.zeros(n + 1, dtype=np.int64)
    # Segments of targets [lo, hi] whose argmin lies in [olo, ohi].
    lo, hi = np.array([1]), np.array([n])
    olo, ohi = np.array([0]), np.array([n - 1])
    while lo.size:
        mid = (lo + hi) // 2
        top = np.minimum(ohi, mid - 1)
        width = top - olo + 1
        seg = np.repeat(np.arange(mid.size), width)
        start = np.cumsum(width) - width
        js = olo[seg] + (np.arange(width.sum()) - start[seg])
        vals = prev[js] + cost(js, mid[seg])
        # First minimum per segment (ties: the smallest j, which keeps the argmin monotone).
        low = np.minimum.reduceat(vals, start)
        pos = np.where(vals == low[seg], np.arange(vals.size), vals.size)
        first = np.minimum.reduceat(pos, start)
        best[mid] = vals[first]
        arg[mid] = js[first]
        left = lo <= mid - 1
        right = mid + 1 <= hi
        lo, hi, olo, ohi = (
            np.concatenate([lo[left], mid[right] + 1]),
            np.concatenate([mid[left] - 1, hi[right]]),
            np.concatenate([olo[left], arg[mid][right]]),
            np.concatenate([arg[mid][left], ohi[right]]),
        )
    return best, arg


def kmeans_1d_exact(values, counts, k):
    """Optimal centroids (ascending, at most k, one per non-empty cluster) of sorted `values`
    weighted by `counts`."""
    x = np.asarray(values, dtype=np.float64)
    w = np.asarray(counts, dtype=np.float64)
    n = x.size
    if n <= k:
        return x.copy()
    shift = np.average(x, weights=w)  # centring keeps the prefix sums well conditioned
    xc = x - shift
    sw = np.concatenate([[0.0], np.cumsum(w)])
    sx = np.concatenate([[0.0], np.cumsum(w * xc)])
    sxx = np.concatenate([[0.0], np.cumsum(w * xc * xc)])

    def cost(j, i):
        cw = sw[i] - sw[j]
        cx = sx[i] - sx[j]
        return np.maximum(sxx[i] - sxx[j] - cx * cx / cw, 0.0)

    prev = np.full(n + 1, np.inf)
    prev[1:] = cost(np.zeros(n, dtype=np.int64), np.arange(1, n + 1))
    prev[0] = np.inf
    args = []
    for _ in range(1, k):
        prev, arg = _layer(prev, cost, n)
        args.append(arg)
    # Walk back the cluster boundaries of the k-cluster solution over all n values.
    bounds = [n]
    i = n
    for arg in reversed(args):
        i = int(arg[i])
        bounds.append(i)
    bounds.append(0)
    bounds = bounds[::-1]
    out = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            out.append((sx[b] - sx[a]) / (sw[b] - sw[a]) + shift)
    return np.array(out)


def _kmeans_vectors(values, counts, k, iters=20, seed=0):
    """Weighted k-means++ seeding and Lloyd iterations over distinct vectors."""
    x = np.asarray(values, dtype=np.float64)
    w = np.asarray(counts, dtype=np.float64)
    rng = np.random.default_rng(seed)
    centers = [x[int(np.argmax(w))]]
    d2 = ((x - centers[0]) ** 2).sum(1)
    while len(centers) < k:
        p = w * d2
        if p.sum() <= 0:
            break
        centers.append(x[rng.choice(x.shape[0], p=p / p.sum())])
        d2 = np.minimum(d2, ((x - centers[-1]) ** 2).sum(1))
    c = np.stack(centers)
    for _ in range(iters):
        lab = ((x[:, None, :] - c[None]) ** 2).sum(2).argmin(1)
        for j in range(c.shape[0]):
            m = lab == j
            if m.any():
                c[j] = (w[m, None] * x[m]).sum(0) / w[m].sum()
    return c


def init_centroids(values, counts, k):
    """k initial centroids of a table: `values` are the distinct entries ([U] or [U, D] for
    vectors; scalar ones ascending), `counts` how often each occurs. Returns a float64 array
    [k, D]; when fewer than k clusters exist the last centroid repeats."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.shape[1] == 1:
        c = kmeans_1d_exact(v[:, 0], counts, k)[:, None]
    else:
        c = _kmeans_vectors(v, counts, k)
    if c.shape[0] < k:
        c = np.concatenate([c, np.repeat(c[-1:], k - c.shape[0], axis=0)])
    return c
