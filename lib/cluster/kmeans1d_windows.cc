// Windows for the optimal boundaries, narrowed by relaxations, then an exact DP inside them.
//
// State: for each boundary j (1 <= j < k; boundary j at position p means cluster j+1 starts at
// value p) a window [plo_j, phi_j] that holds boundary j of every optimal clustering. Positions
// outside every window are never boundaries, so the values between windows form atoms: runs that
// always lie in one cluster, entering the DP as their sums of w, w*x, w*x^2.
//
// A level cuts the windows into units (runs of values) and replaces each unit of values in
// [lo, hi] by two point masses at lo and hi with the unit's weight and mean (a mean-preserving
// spread). For any centroids c, each point's cost is x^2 - h(x) with h(x) = max_j (2 c_j x - c_j^2)
// convex, so by Jensen the spread raises the cost of the nearest-centroid assignment by at most
// D_u = (the spread's sum of w*x^2) - (the unit's). Hence: relaxed optimum - sum D_u <= true
// optimum, and for boundary j in unit u, F[j][e] + G[j][e] - sum D_u (forward and backward DPs of
// the relaxed problem, at either of u's two edges) bounds from below every clustering with
// boundary j in u. A unit whose bound exceeds the cost of a known clustering (Lloyd from the
// relaxed optimum) leaves the window. The relaxed DP allows empty clusters (several boundaries in
// one unit), which only widens it, and its cost is a genuine k-means cost, so it is Monge and each
// layer's argmins are monotone (divide and conquer). The gap sum D_u shrinks with the square of
// the unit widths, so a level or two bring the windows to a few percent of the values.
#include "cluster/kmeans1d_windows.h"

#include "cluster/kmeans1d_windows_sums.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

#include "util/avx2.h"

#if PALETTIZE_AVX2
#include <immintrin.h>
#endif

namespace palettize::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Rows (window edges summed over boundaries) a relaxed level holds, 16 bytes each: 4,096 per
// cluster, from 2^17 to 2^20. The bound's gap falls with the square of the unit widths, so coarse
// units already narrow the windows to a small fraction of the values (1M fp32 values, k = 16: to
// 872 positions), and a level's cost grows with its rows: on 27.2M distinct fp32 values
// (fp32_kmeans_bench 32800000 K), k 16 took 0.64 s of CPU with 2^20 rows and 0.49-0.54 s with
// 2^17, k 64 0.81 s and 0.71-0.73 s with 2^18. Too few rows per cluster and the units are too
// coarse to narrow anything: k 256 with 2^18 rows has 750 units of 106K values, and the levels
// stall. More rows cost more than the levels they save (11M values, k 256: 1.1 s of CPU with
// 2^20, 2.7 s with 2^24).
size_t LevelRows(size_t k) { return std::clamp(k << 12, size_t(1) << 17, size_t(1) << 20); }
// Summed window sizes at which the exact restricted DP runs: 4,096 per cluster from 2^16 on (a
// level more is cheaper than an exact DP over more rows: k 16 above, 0.10 s for the exact DP over
// 838K rows against 0.03 s for a level and an exact DP over 36K), and up to kExactRows once the
// levels stop narrowing the windows.
constexpr size_t kExactRows = size_t(1) << 21;
size_t ExactRows(size_t k) { return std::clamp(k << 12, size_t(1) << 16, kExactRows); }
constexpr int kMaxLevels = 12;
// Relative slack for floating point when comparing a lower bound with an upper bound.
constexpr double kSlack = 1e-9;

struct Arg {
  size_t arg;
  double value;
};

// min over c in [c0, c1] of prev[c - plo] + Cost(e, c) (backward) or Cost(c, e) (forward),
// leftmost on ties; c0 <= c1. The scalar loop is the definition; the AVX2 one (no FMA, so every
// value is bit for bit the scalar one) runs where the processor has it, four candidates at a time.
template <bool kBackward>
Arg ScanScalar(const Elements& el, const double* prev, size_t plo, size_t e, size_t c0, size_t c1) {
  Arg best{c0, kInf};
  for (size_t c = c0; c <= c1; ++c) {
    const double v = prev[c - plo] + (kBackward ? el.Cost(e, c) : el.Cost(c, e));
    if (v < best.value) best = {c, v};
  }
  return best;
}

#if PALETTIZE_AVX2
// A range's sum from two prefix pairs, the later minus the earlier: an empty range gives 0, and
// its cost 0/0 = NaN, which the comparison in ScanAvx2 maps to 0, as Cost does.
template <bool kBackward>
__attribute__((target("avx2"), always_inline)) inline __m256d RangeSum(__m256d fixed, __m256d fixed_lo,
                                                                       __m256d at, __m256d at_lo) {
  return kBackward ? _mm256_add_pd(_mm256_sub_pd(at, fixed), _mm256_sub_pd(at_lo, fixed_lo))
                   : _mm256_add_pd(_mm256_sub_pd(fixed, at), _mm256_sub_pd(fixed_lo, at_lo));
}

template <bool kBackward>
__attribute__((target("avx2"))) Arg ScanAvx2(const Elements& el, const double* prev, size_t plo, size_t e,
                                             size_t c0, size_t c1) {
  const __m256d ew = _mm256_set1_pd(el.w[e]), es1 = _mm256_set1_pd(el.s1[e]), es2 = _mm256_set1_pd(el.s2[e]);
  const __m256d ewl = _mm256_set1_pd(el.wl[e]), es1l = _mm256_set1_pd(el.s1l[e]);
  const __m256d es2l = _mm256_set1_pd(el.s2l[e]);
  const __m256d zero = _mm256_setzero_pd(), inf = _mm256_set1_pd(kInf);
  const __m256i last = _mm256_set1_epi64x(static_cast<long long>(c1));
  __m256i idx =
      _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(c0)), _mm256_setr_epi64x(0, 1, 2, 3));
  __m256d best_v = inf;
  __m256i best_i = idx;
  double tail_w[4], tail_s1[4], tail_s2[4], tail_wl[4], tail_s1l[4], tail_s2l[4], tail_p[4];
  for (size_t c = c0; c <= c1; c += 4) {
    const double *pw = &el.w[c], *ps1 = &el.s1[c], *ps2 = &el.s2[c];
    const double *pwl = &el.wl[c], *ps1l = &el.s1l[c], *ps2l = &el.s2l[c], *pp = &prev[c - plo];
    if (c1 - c < 3) {  // the arrays end at the last candidate: copy a partial vector
      const size_t r = c1 - c + 1;
      for (size_t i = 0; i < 4; ++i) {
        const size_t q = i < r ? i : 0;
        tail_w[i] = pw[q], tail_s1[i] = ps1[q], tail_s2[i] = ps2[q];
        tail_wl[i] = pwl[q], tail_s1l[i] = ps1l[q], tail_s2l[i] = ps2l[q], tail_p[i] = pp[q];
      }
      pw = tail_w, ps1 = tail_s1, ps2 = tail_s2, pwl = tail_wl, ps1l = tail_s1l, ps2l = tail_s2l, pp = tail_p;
    }
    const __m256d w = RangeSum<kBackward>(ew, ewl, _mm256_loadu_pd(pw), _mm256_loadu_pd(pwl));
    const __m256d s1 = RangeSum<kBackward>(es1, es1l, _mm256_loadu_pd(ps1), _mm256_loadu_pd(ps1l));
    const __m256d s2 = RangeSum<kBackward>(es2, es2l, _mm256_loadu_pd(ps2), _mm256_loadu_pd(ps2l));
    const __m256d cost = _mm256_sub_pd(s2, _mm256_mul_pd(s1, _mm256_div_pd(s1, w)));
    const __m256d cpos = _mm256_and_pd(cost, _mm256_cmp_pd(cost, zero, _CMP_GT_OQ));
    __m256d v = _mm256_add_pd(_mm256_loadu_pd(pp), cpos);
    v = _mm256_blendv_pd(v, inf, _mm256_castsi256_pd(_mm256_cmpgt_epi64(idx, last)));
    const __m256d better = _mm256_cmp_pd(v, best_v, _CMP_LT_OQ);
    best_v = _mm256_blendv_pd(best_v, v, better);
    best_i =
        _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(best_i), _mm256_castsi256_pd(idx), better));
    idx = _mm256_add_epi64(idx, _mm256_set1_epi64x(4));
  }
  alignas(32) double vs[4];
  alignas(32) long long is[4];
  _mm256_store_pd(vs, best_v);
  _mm256_store_si256(reinterpret_cast<__m256i*>(is), best_i);
  Arg best{c0, kInf};
  for (int i = 0; i < 4; ++i)
    if (vs[i] < best.value || (vs[i] == best.value && size_t(is[i]) < best.arg))
      best = {size_t(is[i]), vs[i]};
  return best;
}
#endif

// Leftmost row minima by divide and conquer for rows [r0, r1] over candidates [c0, c1]; scan(r,
// lo, hi) returns the leftmost (argmin, min) over candidates [lo, hi] clipped to those valid for r.
template <class Scan>
void Rows(size_t r0, size_t r1, size_t c0, size_t c1, const Scan& scan, double* out, size_t base) {
  if (r0 > r1) return;
  const size_t mid = r0 + (r1 - r0) / 2;
  const auto [arg, value] = scan(mid, c0, c1);
  out[mid - base] = value;
  if (mid > r0) Rows(r0, mid - 1, c0, arg, scan, out, base);
  Rows(mid + 1, r1, arg, c1, scan, out, base);
}

// F[j][e] (first j clusters end at edge e) or, backward, G[j][e] (clusters j+1.. start at e), for
// edges e in [lo[j-1], hi[j-1]], stored at off[j-1]. With `strict` clusters are nonempty.
void Dp(const Elements& el, const std::vector<size_t>& lo, const std::vector<size_t>& hi,
        const std::vector<size_t>& off, bool strict, bool backward, std::vector<double>* t) {
  const size_t layers = lo.size(), E = el.Count();
#if PALETTIZE_AVX2
  const bool avx2 = HasAvx2() && kmeans1d_vector_scans;
#endif
  for (size_t i = 0; i < layers; ++i) {
    const size_t j = backward ? layers - 1 - i : i;
    double* out = t->data() + off[j];
    if (i == 0) {
      for (size_t e = lo[j]; e <= hi[j]; ++e) out[e - lo[j]] = backward ? el.Cost(e, E) : el.Cost(0, e);
      continue;
    }
    const size_t pj = backward ? j + 1 : j - 1;
    const double* prev = t->data() + off[pj];
    const size_t plo = lo[pj];
    auto scan = [&](size_t e, size_t c0, size_t c1) {
      if (backward)
        c0 = std::max(c0, e + strict);
      else
        c1 = std::min(c1, e - strict);
      if (c0 > c1) return Arg{c0, kInf};
#if PALETTIZE_AVX2
      if (avx2 && c1 - c0 >= 3)
        return backward ? ScanAvx2<true>(el, prev, plo, e, c0, c1)
                        : ScanAvx2<false>(el, prev, plo, e, c0, c1);
#endif
      return backward ? ScanScalar<true>(el, prev, plo, e, c0, c1)
                      : ScanScalar<false>(el, prev, plo, e, c0, c1);
    };
    Rows(lo[j], hi[j], lo[pj], hi[pj], scan, out, lo[j]);
  }
}

// Boundary windows in positions, clipped so that strictly increasing boundaries fit.
bool Normalize(size_t n, std::vector<size_t>& plo, std::vector<size_t>& phi) {
  const size_t m = plo.size();
  for (size_t j = 0; j < m; ++j) {
    plo[j] = std::max(plo[j], j == 0 ? size_t(1) : plo[j - 1] + 1);
  }
  for (size_t j = m; j-- > 0;) phi[j] = std::min(phi[j], j + 1 == m ? n - 1 : phi[j + 1] - 1);
  for (size_t j = 0; j < m; ++j)
    if (plo[j] > phi[j]) return false;
  return true;
}

// The cost of clustering `starts` and of Lloyd steps from it; returns the best seen, with its
// starts in `starts`. Each step is O(k (log n + Prefix::kStride)): sums from the anchors.
template <class P, class T>
double LloydUpperBound(const P& pf, const T* x, size_t n, std::vector<size_t>& starts) {
  const size_t k = starts.size();
  std::vector<size_t> cur = starts, next(k);
  std::vector<double> mean(k);
  std::vector<AnchorSums::Sums> at(k + 1);
  at[k] = pf.At(n);
  double best = kInf;
  for (int iter = 0; iter < 8; ++iter) {
    for (size_t j = 0; j < k; ++j) at[j] = pf.At(cur[j]);
    double cost = 0;
    for (size_t j = 0; j < k; ++j) {
      const AnchorSums::Sums r = AnchorSums::Between(at[j], at[j + 1]);
      cost += AnchorSums::Cost(r);
      mean[j] = pf.Mean(r);
    }
    if (cost < best) best = cost, starts = cur;
    next[0] = 0;
    for (size_t j = 1; j < k; ++j) {
      const double mid = 0.5 * (mean[j - 1] + mean[j]);
      const size_t p = size_t(std::upper_bound(x, x + n, mid) - x);
      next[j] = std::min(std::max(p, next[j - 1] + 1), n - (k - j));
    }
    if (next == cur) break;
    std::swap(cur, next);
  }
  return best;
}

// The exact DP restricted to the windows: atoms between them, single values inside.
template <class P, class X, class W>
void ExactStage(const P& pf, X x, W w, size_t n, double shift, const std::vector<size_t>& plo,
                const std::vector<size_t>& phi, std::vector<size_t>* starts) {
  const size_t m = plo.size();
  Elements el;
  el.Reserve(2 * m + 1 + [&] {
    size_t union_size = 0;
    for (size_t j = 0, b = 0; j < m; ++j) union_size += phi[j] + 1 - std::max(plo[j], b), b = phi[j] + 1;
    return union_size;
  }());
  std::vector<size_t> span_start, span_elem;  // the windows' union: each run's first value, element
  size_t done = 0;
  for (size_t j = 0; j < m;) {
    const size_t a = plo[j];
    size_t b = phi[j];
    while (++j < m && plo[j] <= b + 1) b = std::max(b, phi[j]);
    if (a > done) PushRun(pf, done, a, &el);
    span_start.push_back(a), span_elem.push_back(el.Count());
    for (size_t p = a; p <= b; ++p) {
      const double d = x[p] - shift;
      el.Push(w[p], w[p] * d, w[p] * d * d, 0, 0, 0, p + 1);
    }
    done = b + 1;
  }
  if (done < n) PushRun(pf, done, n, &el);
  // The edge before value p, for p in the union.
  auto elem_of = [&](size_t p) {
    const size_t s =
        size_t(std::upper_bound(span_start.begin(), span_start.end(), p) - span_start.begin()) - 1;
    return span_elem[s] + (p - span_start[s]);
  };
  std::vector<size_t> lo(m), hi(m), off(m + 1, 0);
  for (size_t j = 0; j < m; ++j) {
    lo[j] = elem_of(plo[j]), hi[j] = elem_of(phi[j]);
    off[j + 1] = off[j] + (hi[j] - lo[j] + 1);
  }
  std::vector<double> f(off[m]);
  Dp(el, lo, hi, off, true, false, &f);
  // Backtrack: the leftmost best last boundary, then each earlier one, as the DP chose them.
  const size_t E = el.Count();
  std::vector<size_t> edge(m + 1);
  edge[m] = E;
  for (size_t j = m; j-- > 0;) {
    Arg best{lo[j], kInf};
    const size_t c1 = std::min(hi[j], edge[j + 1] - 1);
    for (size_t c = lo[j]; c <= c1; ++c) {
      const double v = f[off[j] + c - lo[j]] + el.Cost(c, edge[j + 1]);
      if (v < best.value) best = {c, v};
    }
    edge[j] = best.arg;
  }
  starts->assign(1, 0);
  for (size_t j = 0; j < m; ++j) starts->push_back(el.start[edge[j]]);
}

template <class XT, class WT>
bool Windowed(const XT* x_in, const WT* w_in, size_t n, size_t k, std::vector<size_t>* starts,
              size_t exact_rows, size_t level_rows) {
  if (k < 2 || k >= n) return false;
  const AsDouble<XT> x{x_in};
  const AsDouble<WT> w{w_in};
  // The values' weighted mean (the frame of every sum) and the prefix sums in it. They wait for
  // the first level's units when it has them: that pass over every value also makes the totals,
  // value by value in the same order as the plain loop, so nothing else reads all n values
  // before the prefix sums do.
  double shift = 0, s2_total = 0;
  std::optional<Prefix<AsDouble<XT>, AsDouble<WT>>> prefix;
  auto start_sums = [&](const double* totals) {
    shift = totals[1] / totals[0];
    prefix.emplace(x, w, n, shift);
    s2_total = prefix->S2Total();
  };
  auto plain_sums = [&] {
    double totals[2] = {0, 0};
    for (size_t i = 0; i < n; ++i) totals[0] += w[i], totals[1] += w[i] * x[i];
    start_sums(totals);
  };
  const size_t m = k - 1;
  std::vector<size_t> plo(m), phi(m);
  for (size_t j = 0; j < m; ++j) plo[j] = j + 1, phi[j] = n - k + j + 1;
  double ub = kInf;
  size_t last_total = std::numeric_limits<size_t>::max();
  int stalled = 0;
  for (int level = 0; level < kMaxLevels; ++level) {
    if (!Normalize(n, plo, phi)) return false;
    size_t total = 0;
    for (size_t j = 0; j < m; ++j) total += phi[j] - plo[j] + 1;
    std::vector<std::pair<size_t, size_t>> spans;  // the union, as inclusive position ranges
    for (size_t j = 0; j < m;) {
      size_t b = phi[j];
      const size_t a = plo[j];
      while (++j < m && plo[j] <= b + 1) b = std::max(b, phi[j]);
      spans.push_back({a, b});
    }
    double value_span = 0;
    size_t union_size = 0;
    for (const auto& [a, b] : spans) value_span += x[b] - x[a], union_size += b - a + 1;
    // The exact stage holds 8 bytes per row and 56 per value of the union.
    const bool stalls = total > last_total / 4 * 3 && ++stalled >= 2;
    if (total <= exact_rows || (total <= 2 * exact_rows && union_size <= exact_rows / 4) ||
        (stalls && total <= kExactRows)) {
      if (!prefix) plain_sums();
      ExactStage(*prefix, x, w, n, shift, plo, phi, starts);
      return true;
    }
    if (stalls) return false;
    last_total = total;
    // Units: runs of the windows' union of at most `count` values and value span `span`. Rows
    // are about 2 * total / count; the span limit at most doubles the units.
    const size_t count = std::max<size_t>(1, 4 * total / level_rows + 1);
    const double span = value_span / double(std::max<size_t>(1, union_size / count));
    std::vector<Unit> units;
    units.reserve(2 * (union_size / count + spans.size()));
    // The first level covers values [1, n): with value 0 first, every value in order.
    const bool with_totals = !prefix && spans.size() == 1 && spans[0].first == 1 && spans[0].second == n - 1;
    if (with_totals) {
      double totals[2] = {0, 0};
      totals[0] += w[0], totals[1] += w[0] * x[0];
      MakeUnits(x, w, spans, count, span, &units, totals);
      start_sums(totals);
    } else {
      if (!prefix) plain_sums();
      MakeUnits(x, w, spans, count, span, &units, nullptr);
    }
    const auto& pf = *prefix;
    Elements el;
    el.Reserve(2 * spans.size() + 1 + 2 * units.size());
    std::vector<size_t> ustart, ufirst;  // each unit's first value and first element
    double gap = 0;                      // sum of D_u
    size_t done = 0, next = 0;
    for (const auto& [a, b] : spans) {
      if (a > done) PushRun(pf, done, a, &el);
      for (; next < units.size() && units[next].b <= b; ++next) {
        const Unit& u = units[next];
        ustart.push_back(u.b), ufirst.push_back(el.Count());
        const double lo = x[u.b], hi = x[u.e - 1];
        if (u.e - u.b == 1) {
          const double d = lo - shift;
          el.Push(w[u.b], w[u.b] * d, w[u.b] * d * d, 0, 0, 0, u.e);
        } else {
          const double W = u.sums[0], S1 = u.sums[1], S2 = u.sums[2];  // relative to lo
          const double whi = std::min(W, S1 / (hi - lo)), wlo = W - whi;
          gap += std::max(0.0, wlo * whi / W * (hi - lo) * (hi - lo) - (S2 - S1 * (S1 / W)));
          const double dl = lo - shift, dh = hi - shift;
          el.Push(wlo, wlo * dl, wlo * dl * dl, 0, 0, 0, u.b + 1);
          el.Push(whi, whi * dh, whi * dh * dh, 0, 0, 0, u.e);
        }
      }
      done = b + 1;
    }
    if (done < n) PushRun(pf, done, n, &el);
    ustart.push_back(n), ufirst.push_back(el.Count());
    auto unit_of = [&](size_t p) {
      return size_t(std::upper_bound(ustart.begin(), ustart.end(), p) - ustart.begin()) - 1;
    };
    std::vector<size_t> lo(m), hi(m), off(m + 1, 0);
    for (size_t j = 0; j < m; ++j) {
      lo[j] = ufirst[unit_of(plo[j])];
      hi[j] = ufirst[unit_of(phi[j]) + 1] - 1;
      off[j + 1] = off[j] + (hi[j] - lo[j] + 1);
    }
    std::vector<double> f(off[m]), g(off[m]);
    Dp(el, lo, hi, off, false, false, &f);
    Dp(el, lo, hi, off, false, true, &g);
    // An upper bound: the relaxed optimum's boundaries (a cut unit cut in its middle), then Lloyd.
    size_t best_e = lo[m - 1];
    double best = kInf;
    for (size_t e = lo[m - 1]; e <= hi[m - 1]; ++e) {
      const double v = f[off[m - 1] + e - lo[m - 1]] + g[off[m - 1] + e - lo[m - 1]];
      if (v < best) best = v, best_e = e;
    }
    std::vector<size_t> edges(m), guess(k, 0);
    edges[m - 1] = best_e;
    for (size_t j = m - 1; j-- > 0;) {
      double bv = kInf;
      edges[j] = lo[j];
      for (size_t c = lo[j]; c <= std::min(hi[j], edges[j + 1]); ++c) {
        const double v = f[off[j] + c - lo[j]] + el.Cost(c, edges[j + 1]);
        if (v < bv) bv = v, edges[j] = c;
      }
    }
    for (size_t j = 1; j < k; ++j) {
      const size_t e = edges[j - 1], u = unit_of(el.start[e]);
      const size_t p = e == ufirst[u] ? ustart[u] : ustart[u] + (ustart[u + 1] - ustart[u]) / 2;
      guess[j] = std::min(std::max(p, guess[j - 1] + 1), n - (k - j));
    }
    ub = std::min(ub, LloydUpperBound(pf, x_in, n, guess));
    // Costs are S2 - S1^2/W in the shifted frame: each carries a rounding error of a few ulps of
    // its S2, so the bounds get that much slack over all clusters (negligible unless clusters
    // lie far from the mean relative to their spread, where no double DP resolves the optimum).
    const double limit = ub * (1 + kSlack) + gap + 64 * std::numeric_limits<double>::epsilon() * s2_total;
    for (size_t j = 0; j < m; ++j) {
      size_t first = hi[j] + 1, last = 0;
      for (size_t e = lo[j]; e <= hi[j]; ++e) {
        if (f[off[j] + e - lo[j]] + g[off[j] + e - lo[j]] > limit) continue;
        first = std::min(first, e), last = e;
      }
      if (first > hi[j]) return false;  // only rounding can prune every edge
      const size_t uf = unit_of(el.start[first]), ul = unit_of(el.start[last]);
      plo[j] = std::max(plo[j], ustart[uf]);
      phi[j] = std::min(phi[j], ustart[ul + 1] - 1);
    }
  }
  return false;
}

}  // namespace

bool WindowedKMeans1D(const double* x, const double* w, size_t n, size_t k, std::vector<size_t>* starts,
                      WindowSizes sizes) {
  return Windowed(x, w, n, k, starts, sizes.exact_rows ? sizes.exact_rows : ExactRows(k),
                  sizes.level_rows ? sizes.level_rows : LevelRows(k));
}

bool WindowedKMeans1D(const float* x, const uint32_t* w, size_t n, size_t k, std::vector<size_t>* starts,
                      WindowSizes sizes) {
  return Windowed(x, w, n, k, starts, sizes.exact_rows ? sizes.exact_rows : ExactRows(k),
                  sizes.level_rows ? sizes.level_rows : LevelRows(k));
}

}  // namespace palettize::detail
