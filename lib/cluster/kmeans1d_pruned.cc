// The pruned path of exact 1-D k-means (kmeans1d_solver.h, SolvePruned): rows that cannot lie on
// an optimal path are skipped, by an upper bound on the optimum and lower bounds on the clusters
// still to come, and the DP runs from both ends.
#include <algorithm>
#include <atomic>
#include <limits>

#include "cluster/kmeans1d_remainder.h"
#include "cluster/kmeans1d_solver.h"

namespace palettize::detail {

// kmeans1d.cc: tests turn the remainder bounds off (to zero) to compare the DP with the upper bound
// alone, and the units' upper bound off to compare it with Lloyd's.
extern std::atomic<bool> kmeans1d_remainder;
extern std::atomic<bool> kmeans1d_unit_bound;

size_t Solver::BlockFloor(size_t c0, size_t c1) {
  // More blocks bound a row's cost more closely but cost more a row; with the units' upper bound,
  // 24 took 2-3% less time than 64 on float16 groups at k = 16 and 64 (16 and 32 about as little).
  constexpr size_t kBlocks = 24;
  const size_t size = c1 - c0 + 1, blocks = std::min(kBlocks, size);
  PrefixSums& b = ws_.blocks;
  for (auto* a : {&b.w, &b.s1, &b.s2, &b.w_lo, &b.s1_lo, &b.s2_lo})
    a->assign(blocks + 1 + PrefixSums::kPad, 0.0);
  ws_.block_least.assign(blocks + 1 + PrefixSums::kPad, 0.0);
  for (size_t i = 0; i < blocks; ++i) {
    const size_t first = c0 + i * size / blocks, last = c0 + (i + 1) * size / blocks - 1;
    ws_.block_least[i] =
        *std::min_element(ws_.prev.begin() + ptrdiff_t(first), ws_.prev.begin() + ptrdiff_t(last) + 1);
    b.w[i] = ws_.ps.w[last], b.s1[i] = ws_.ps.s1[last], b.s2[i] = ws_.ps.s2[last];
    b.w_lo[i] = ws_.ps.w_lo[last], b.s1_lo[i] = ws_.ps.s1_lo[last], b.s2_lo[i] = ws_.ps.s2_lo[last];
  }
  return blocks;
}

double Solver::AtLeast(size_t blocks, size_t p) {
  // Row p's sums go in slot `blocks`, so that a row scan over the blocks computes each term.
  PrefixSums& b = ws_.blocks;
  b.w[blocks] = ws_.ps.w[p], b.s1[blocks] = ws_.ps.s1[p], b.s2[blocks] = ws_.ps.s2[p];
  b.w_lo[blocks] = ws_.ps.w_lo[p], b.s1_lo[blocks] = ws_.ps.s1_lo[p], b.s2_lo[blocks] = ws_.ps.s2_lo[p];
#if PALETTIZE_AVX2
  if (use_avx2_) return ScanRowAvx2Any(b, ws_.block_least.data(), blocks, 0, blocks - 1).value;
#endif
  return ScanRowScalar(b, ws_.block_least.data(), blocks, 0, blocks - 1).value;
}

bool Solver::ForwardHalf(size_t layers, size_t after, double bound, size_t top_from, size_t top_to,
                         const std::vector<double>& rest, double lambda) {
  const size_t n = n_, k = layers + after;
  // The least the clusters after row p of layer j can cost (kmeans1d_remainder.h). It does not
  // increase with p.
  auto remainder = [&](size_t j, size_t p) { return std::max(0.0, rest[p] - lambda * double(k - j)); };
  // The first row of layer j from `from` on that a clustering under the bound can hold, as far as
  // the remainder tells (D[j][p] >= 0): a binary search, rest[n] being 0.
  auto first_row = [&](size_t j, size_t from) {
    size_t lo = from, hi = n;
    while (lo < hi) {
      const size_t m = lo + (hi - lo) / 2;
      if (remainder(j, m) <= bound)
        hi = m;
      else
        lo = m + 1;
    }
    return lo;
  };
  // The kept rows of a layer, [h_lo, h_hi]: from the first to the last row whose cost plus its
  // remainder is within the bound. Every row of an optimal clustering is among them, with its exact
  // cost and leftmost argmin (candidates outside hold no optimal path); they are the next layer's
  // candidates.
  // Nearly every row between them passes, so the two ends are found by scans from either side.
  size_t h_lo = 0, h_hi = 0;
  auto hull = [&](size_t j, size_t first, size_t last, const std::vector<double>& d) {
    auto passes = [&](size_t p) { return d[p] + remainder(j, p) <= bound; };
    h_lo = first;
    while (h_lo <= last && !passes(h_lo)) ++h_lo;
    if (h_lo > last) return false;
    h_hi = last;
    while (!passes(h_hi)) --h_hi;
    return true;
  };
  // Layer 1: D[1][p] does not decrease with p.
  const size_t first1 = first_row(1, 1);
  size_t last1 = first1 - 1;
  for (size_t p = first1; p <= n - (layers - 1) - after; ++p) {
    ws_.prev[p] = Cost(0, p);
    if (ws_.prev[p] > bound) break;
    last1 = p;
  }
  if (last1 < first1 || !hull(1, first1, last1, ws_.prev)) return false;
  ws_.layer_offset.assign(layers + 1, 0);
  ws_.layer_first.assign(layers + 1, 0);
  ws_.table.clear();
  bound_last_ = 0;  // the cross-layer bound on argmins needs every earlier row: not used here
  for (size_t j = 2; j <= layers; ++j) {
    const size_t row_max = std::min(n - (layers - j) - after, j == layers ? top_to : n);
    // Past the candidates, the last row that a clustering under the bound can hold. Row p's cost
    // is at least L(p), the least over blocks of candidates of the block's least cost plus the
    // cost of the values from the block's last candidate to p (the block holding p's argmin gives
    // no more than D[j][p]); L does not decrease with p and costs one short scan. So no row of
    // [a, b] lies on such a clustering when L(a) + remainder(j, b) > bound: intervals are split
    // depth first, later halves first, and the first single row not ruled out is the last row.
    // An interval's first half starts where it does and takes its L(a) along.
    const size_t blocks = BlockFloor(h_lo, h_hi);
    size_t lo = std::max(j, std::min(h_hi + 1, row_max));
    struct Interval {
      size_t a, b;
      double at_a;  // L(a), or -1 until computed
    };
    Interval stack[128];  // two entries a level: 2 log2(n) + 2
    size_t depth = 0;
    if (lo > h_hi) stack[depth++] = {lo, row_max, -1.0};  // else the one row, row_max, is kept
    while (depth > 0) {
      Interval v = stack[--depth];
      if (v.at_a < 0) v.at_a = AtLeast(blocks, v.a);
      if (v.at_a + remainder(j, v.b) > bound) continue;
      if (v.a == v.b) {
        lo = v.a;
        break;
      }
      const size_t mid = v.a + (v.b - v.a) / 2;
      stack[depth++] = {v.a, mid, v.at_a};
      stack[depth++] = {mid + 1, v.b, -1.0};
    }
    // Below the kept rows: row p of an optimal clustering costs at least the least cost of its
    // candidates below it (their costs are exact on every optimal path), so rows whose remainder
    // exceeds what that leaves are dropped, one at a time.
    size_t first = std::max({j, h_lo + 1, j == layers ? top_from : size_t(0)});
    double least = *std::min_element(ws_.prev.begin() + ptrdiff_t(h_lo),
                                     ws_.prev.begin() + ptrdiff_t(std::min(first - 1, h_hi)) + 1);
    while (first <= lo && least + remainder(j, first) > bound) {
      if (first <= h_hi) least = std::min(least, ws_.prev[first]);  // a candidate of the next row
      ++first;
    }
    if (first > lo) return false;
    const RowMin last = ScanRow(lo, h_lo, std::min(h_hi, lo - 1));
    // No row up to lo has its argmin past lo's (leftmost argmins do not decrease with p).
    SolveLayer(first, lo - first + 1, h_lo, last.arg);
    if (!hull(j, first, lo, ws_.cur)) return false;
    ws_.layer_offset[j] = ws_.table.size();
    ws_.layer_first[j] = first;
    ws_.table.insert(ws_.table.end(), ws_.arg.begin() + first, ws_.arg.begin() + lo + 1);
    std::swap(ws_.prev, ws_.cur);
    std::swap(ws_.arg_prev, ws_.arg);
  }
  top_begin_ = h_lo;
  top_end_ = h_hi;
  return true;
}

std::vector<size_t> Solver::Backtrack(size_t p, size_t layers) const {
  std::vector<size_t> starts(layers);
  starts[0] = 0;
  for (size_t j = layers; j >= 2; --j) {
    p = ws_.table[ws_.layer_offset[j] + (p - ws_.layer_first[j])];
    starts[j - 1] = p;
  }
  return starts;
}

// The two halves of the pruned DP (below) over `left`'s problem of n items, each half's bounds on
// the clusters after its rows in its workspace's `rest`: the right half as the left half of the
// mirrored problem, values negated and reversed, in `right_ws`. They meet at the boundary between
// cluster k/2 and the next. False, and nothing appended, if the bound proved too tight for
// floating point.
bool MeetHalves(Solver& left, Workspace& left_ws, Workspace& right_ws, size_t k, double bound, double lambda,
                std::vector<size_t>& starts) {
  const size_t n = left.size(), k_left = k / 2, k_right = k - k_left;
  Solver right(left, right_ws);
  // The right half first: the left's top layer then needs only the rows it can meet.
  if (!right.ForwardHalf(k_right, k_left, bound, 0, n, right_ws.rest, lambda) ||
      !left.ForwardHalf(k_left, k_right, bound, n - right.TopEnd(), n - right.TopBegin(), left_ws.rest,
                        lambda)) {
    return false;
  }
  // p: the values left of the meeting boundary; both halves must have kept their row.
  size_t best_p = 0;
  double best = std::numeric_limits<double>::infinity();
  const size_t p_lo = std::max({k_left, n - right.TopEnd(), left.TopBegin()});
  const size_t p_hi = std::min({left.TopEnd(), n - right.TopBegin(), n - k_right});
  for (size_t p = p_lo; p <= p_hi; ++p) {
    const double v = left.Top(p) + right.Top(n - p);
    if (v < best) {
      best = v;
      best_p = p;
    }
  }
  if (best_p == 0) return false;
  const std::vector<size_t> l = left.Backtrack(best_p, k_left);
  const std::vector<size_t> r = right.Backtrack(n - best_p, k_right);
  starts.insert(starts.end(), l.begin(), l.end());
  starts.push_back(best_p);
  for (size_t j = k_right - 1; j >= 1; --j) starts.push_back(n - r[j]);
  return true;
}

// The pruned path. Any k-clustering's cost bounds the optimum from above, so a DP row (j clusters
// over the first p values) cannot lie on an optimal path when its cost plus a lower bound on the
// k - j clusters after it exceeds that: each layer keeps the rows between the first and the last
// that pass, and the next layer's candidates are those rows. The lower bound is Lagrangian (see
// kmeans1d_remainder.h). The DP runs from both ends for about k/2 layers each (MeetHalves).
//
// The closer the upper bound, the fewer rows pass. Lloyd's cost is its first value, which is up to
// 6% over the optimum on float16 groups. The remainder bounds cut the values into units (runs of
// at most 1/24 of a Lloyd cluster's span, every Lloyd boundary among their ends), and the same
// pruned DP over the units, each kept whole, finds the best clustering with boundaries at unit
// ends, Lloyd's among them: a few Lloyd iterations from it come within about 0.03% of the
// optimum. On the float16 groups of 12,288 values of BENCHMARKS.md's 85M model, k = 16, the two
// DPs compute about 10,100 rows and scan 58,000 candidates a group, the units' included (17,900
// and 132,000 with Lloyd's bound, 47,000 and 361,000 with neither the units nor the remainder
// bounds).
// `ws` holds four workspaces: the values' two halves, then the units'.
bool SolvePruned(const double* values, const double* weights, size_t n, size_t k, Workspace* ws,
                 std::vector<size_t>& starts) {
  Solver left(values, weights, n, kMaxTableEntries, ws[0]);
  // Slack over the rounding of the two DPs' sums against the bound's own.
  const double total = left.Cost(0, n);
  std::vector<size_t> guess;
  double bound = left.LloydCost(k, &guess) * (1 + 1e-9) + 1e-12 * total;
  // The marginal cost of a cluster near k of them, about 2 x cost / k at high resolution.
  const double lambda = 2 * bound / double(k);
  std::vector<size_t>& units = ws[0].units;
  if (detail::kmeans1d_remainder) {
    // Slack for the rounding of the costs, as the bound's own.
    const double slack = 1e-9 * bound + 1e-12 * total;
    detail::RemainderBounds(values, weights, n, guess, lambda, slack, &ws[0].rest, &ws[1].rest, &units);
  } else {
    ws[0].rest.assign(n + 1, 0.0), ws[1].rest.assign(n + 1, 0.0);
    units.clear();
  }
  const size_t m = units.empty() ? 0 : units.size() - 1;
  if (m > k && m < n && detail::kmeans1d_unit_bound) {
    // The units' problem: its rows are the values' rows at unit ends, so the values' remainder
    // bounds hold there (keeping units whole never lowers a cost), and Lloyd's clustering is one
    // of its clusterings, so Lloyd's bound holds too.
    Solver coarse(left, units, ws[2]);
    ws[2].rest.resize(m + 1), ws[3].rest.resize(m + 1);
    for (size_t i = 0; i <= m; ++i) {
      ws[2].rest[i] = ws[0].rest[units[i]];
      ws[3].rest[i] = ws[1].rest[n - units[m - i]];
    }
    std::vector<size_t> aligned;
    if (MeetHalves(coarse, ws[2], ws[3], k, bound, lambda, aligned)) {
      for (size_t& s : aligned) s = units[s];
      bound = std::min(bound, left.Lloyd(&aligned, 3) * (1 + 1e-9) + 1e-12 * total);
    }
  }
  return MeetHalves(left, ws[0], ws[1], k, bound, lambda, starts);
}

}  // namespace palettize::detail
