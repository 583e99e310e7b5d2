// The coarser problem: each cluster of the given clustering is cut into units of at most 1/24 of
// its value span. A unit of three or more values is replaced by two point masses, at its smallest
// and its largest value, with its weight and its mean (a mean-preserving spread); smaller units
// stay as they are. For any centroids, a value's cost against its nearest centroid is x^2 - h(x)
// with h convex, so by Jensen the spread raises the cost of any assignment by at most
// D_u = (the spread's sum of w x^2) - (the unit's) per unit (kmeans1d_windows.cc uses the same
// relaxation). Hence G over the points from unit u on, minus the D_u of those units, is at most G
// over the values from unit u's first value on. A suffix that starts inside a unit holds the
// suffix from the next unit, and G never falls as values are added, so each suffix takes the
// bound of the next unit start. On 16-bit float groups the D_u sum to a fraction of Lloyd's 0.5%
// gap to the optimum (a sixth of it with units of 1/40, three quarters with 1/20), and the coarser
// problem has about a twelfth of the values.
#include "cluster/kmeans1d_remainder.h"

#include <algorithm>
#include <atomic>

#include "cluster/kmeans1d_rows.h"
#include "util/avx2.h"

namespace palettize::detail {

extern std::atomic<bool> kmeans1d_vector_scans;  // kmeans1d.cc; tests compare the scans

namespace {

constexpr double kUnitsPerCluster = 24;

// Per thread, reused: a grouped config computes these bounds for every group.
struct Scratch {
  std::vector<double> x, w;        // the coarser problem's points, ascending
  std::vector<size_t> unit_start;  // each unit's first value, then n
  std::vector<size_t> unit_point;  // each unit's first point, then the number of points
  std::vector<double> gap;         // each unit's D_u
  PrefixSums ps;
  std::vector<double> prev, g_pre, g_suf;
};

// The leftmost least prev[m] + cost(m, i) over m in [from, i - 1], for prev nondecreasing in m: the
// first four candidates exactly, then blocks of candidates, each skipped when a lower bound on its
// candidates, prev at its first plus the cost from its last (cost does not increase with m), is no
// less than the least value found, else scanned; a skipped block's successor is twice as long.
// Once prev alone reaches the least value, no later candidate is smaller. On float16 groups of
// 12,288 values this evaluates 11.9 candidates and 3.2 block bounds a point, where scanning until
// prev reaches the least value evaluated 15.6 candidates.
template <class Scan>
RowMin RisingMin(const PrefixSums& ps, const double* prev, size_t i, size_t from, Scan scan) {
  size_t m = std::min(from + 4, i);
  RowMin best = scan(from, m - 1);
  for (size_t size = 4; m < i && prev[m] < best.value; size *= 2) {
    const size_t last = std::min(m + size, i) - 1;
    if (prev[m] + RangeCost(ps, last, i) < best.value) {
      const RowMin r = scan(m, last);
      if (r.value < best.value) best = r;
      size = 2;  // doubled to 4 for the next block
    }
    m = last + 1;
  }
  return best;
}

#if PALETTIZE_AVX2
__attribute__((target("avx2"))) RowMin RisingMinAvx2(const PrefixSums& ps, const double* prev, size_t i,
                                                     size_t from) {
  return RisingMin(ps, prev, i, from,
                   [&](size_t begin, size_t end) { return ScanRowAvx2Any(ps, prev, i, begin, end); });
}
#endif

// g[i] for the first i points (ps their prefix sums): 0 for i = 0, else the least cost + lambda x
// (number of clusters) over every clustering of them. Argmins do not decrease with i (the cost
// is Monge), so each step scans from the previous step's leftmost argmin; a floating-point tie
// that breaks that order misses a candidate by about an ulp of the costs, far inside the slack.
// g does not decrease with i (a point added never lowers the optimum), so RisingMin applies.
void PenalizedPrefixes(const PrefixSums& ps, size_t m, double lambda, bool avx2, std::vector<double>& prev,
                       std::vector<double>* g) {
  prev.assign(m + 1 + PrefixSums::kPad, 0.0);
  g->assign(m + 1, 0.0);
  prev[0] = lambda;
  size_t from = 0;
  for (size_t i = 1; i <= m; ++i) {
#if PALETTIZE_AVX2
    const RowMin r = avx2 ? RisingMinAvx2(ps, prev.data(), i, from)
                          : RisingMin(ps, prev.data(), i, from, [&](size_t begin, size_t end) {
                              return ScanRowScalar(ps, prev.data(), i, begin, end);
                            });
#else
    (void)avx2;
    const RowMin r = RisingMin(ps, prev.data(), i, from, [&](size_t begin, size_t end) {
      return ScanRowScalar(ps, prev.data(), i, begin, end);
    });
#endif
    (*g)[i] = r.value;
    prev[i] = r.value + lambda;
    from = r.arg;
  }
}

}  // namespace

void RemainderBounds(const double* x, const double* w, size_t n, const std::vector<size_t>& starts,
                     double lambda, double slack, std::vector<double>* suffix, std::vector<double>* mirrored,
                     std::vector<size_t>* units_out) {
  thread_local Scratch s;
  s.x.clear(), s.w.clear(), s.unit_start.clear(), s.unit_point.clear(), s.gap.clear();
  const size_t k = starts.size();
  for (size_t c = 0; c < k; ++c) {
    const size_t b = starts[c], e = c + 1 < k ? starts[c + 1] : n;
    const double span = (x[e - 1] - x[b]) / kUnitsPerCluster;
    for (size_t u0 = b; u0 < e;) {
      size_t u1 = u0 + 1;  // the unit is values [u0, u1)
      while (u1 < e && x[u1] - x[u0] <= span) ++u1;
      if (u1 - u0 < 3) {
        for (size_t i = u0; i < u1; ++i) {
          s.unit_start.push_back(i), s.unit_point.push_back(s.x.size()), s.gap.push_back(0);
          s.x.push_back(x[i]), s.w.push_back(w[i]);
        }
      } else {
        const double lo = x[u0], len = x[u1 - 1] - lo;
        double W = 0, S1 = 0, S2 = 0;  // relative to lo
        for (size_t i = u0; i < u1; ++i) {
          const double d = x[i] - lo, wd = w[i] * d;
          W += w[i], S1 += wd, S2 += wd * d;
        }
        const double whi = std::min(W, S1 / len);
        s.unit_start.push_back(u0), s.unit_point.push_back(s.x.size());
        s.gap.push_back(std::max(0.0, whi * len * len - S2));
        s.x.push_back(lo), s.w.push_back(W - whi);
        s.x.push_back(x[u1 - 1]), s.w.push_back(whi);
      }
      u0 = u1;
    }
  }
  const size_t units = s.unit_start.size(), m = s.x.size();
  s.unit_start.push_back(n), s.unit_point.push_back(m);
  if (units_out) units_out->assign(s.unit_start.begin(), s.unit_start.end());
  const bool avx2 = HasAvx2() && kmeans1d_vector_scans;
  BuildPrefixSums(s.x.data(), s.w.data(), m, &s.ps);
  PenalizedPrefixes(s.ps, m, lambda, avx2, s.prev, &s.g_pre);
  // The mirrored points: g_suf[i] is G over the last i points.
  std::reverse(s.x.begin(), s.x.end());
  std::reverse(s.w.begin(), s.w.end());
  for (double& v : s.x) v = -v;
  BuildPrefixSums(s.x.data(), s.w.data(), m, &s.ps);
  PenalizedPrefixes(s.ps, m, lambda, avx2, s.prev, &s.g_suf);

  // Values [p, n), for p in (start of unit u - 1, start of unit u]: the bound of unit u, the first
  // to start at or after p, never below a later one's. Past the last unit's start, none: 0.
  suffix->resize(n + 1);
  std::fill(suffix->begin() + ptrdiff_t(s.unit_start[units - 1]) + 1, suffix->end(), 0.0);
  double gap_after = 0, running = 0;  // D_u of units u.. (the ones in the suffix)
  for (size_t u = units; u-- > 0;) {
    gap_after += s.gap[u];
    running = std::max(running, s.g_suf[m - s.unit_point[u]] - gap_after - slack);
    const size_t from = u > 0 ? s.unit_start[u - 1] + 1 : 0;
    std::fill(suffix->begin() + ptrdiff_t(from), suffix->begin() + ptrdiff_t(s.unit_start[u]) + 1, running);
  }
  // Values [0, P), for P from the start of unit u to the next: units 0..u-1, at mirrored[n - P],
  // never below a shorter prefix's.
  mirrored->resize(n + 1);
  double gap_before = 0;
  running = 0;
  for (size_t u = 0; u <= units; ++u) {
    if (u > 0) gap_before += s.gap[u - 1];
    running = std::max(running, s.g_pre[s.unit_point[u]] - gap_before - slack);
    const size_t end = u < units ? s.unit_start[u + 1] : n + 1;  // P in [unit_start[u], end)
    std::fill(mirrored->begin() + ptrdiff_t(n + 1 - end),
              mirrored->begin() + ptrdiff_t(n - s.unit_start[u]) + 1, running);
  }
}

}  // namespace palettize::detail
