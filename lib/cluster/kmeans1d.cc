// Exact weighted 1-D k-means: dynamic programming, each layer solved by divide and conquer.
//
// Optimal 1-D clusters are contiguous runs of the sorted values, so D[j][p], the best cost of the
// first p values in j clusters, is min over m of D[j-1][m] + cost(m, p). cost obeys the quadrangle
// inequality, so the leftmost optimal m is monotone in p, and divide and conquer over p finds every
// row minimum exactly in O(n log n) per layer. We tried SMAWK (O(n) per layer) first: it made ~10
// unpredictable-branch cost evaluations per DP cell and was slower in practice than D&C's
// sequential scans, which are further cut by the bound opt[j-1][p] <= opt[j][p].
//
// cost(m, p) is O(1) from prefix sums of w, w*x, w*x^2 of values shifted by their weighted mean.
// Each is kept as a pair, the running double sum and the running sum of its rounding errors, so a
// range sum is accurate relative to the range itself rather than to the prefix totals, while the
// hot loop stays in double. What remains is the S2 - S1^2/W cancellation inside a cluster, relative
// error about 1e-16 * (cluster mean / cluster spread)^2 in the shifted frame. Centroids and sse
// are recomputed directly from the final runs in long double.
//
// Most problems take the pruned path (SolvePruned below): rows that cannot lie on an optimal path
// are skipped, and the DP runs from both ends. Rows are scanned four candidates at a time with
// AVX2 where the processor has it, bit for bit as the scalar scan.
//
// Recovering the partition takes an argmin table of (k-1) x n uint32. When that would exceed
// kMaxTableEntries (64 MiB: 256 centroids over all 65,536 fp16 values still fit) we keep O(n)
// memory instead, Hirschberg-style: the forward pass also carries, for every DP state, where its
// path crosses the middle layer. That fixes one boundary of the optimum, and the two sides are
// solved recursively as independent, smaller problems, about twice the work of one pass in total.
#include "cluster/kmeans1d.h"

#include "cluster/kmeans1d_remainder.h"
#include "cluster/kmeans1d_rows.h"
#include "cluster/kmeans1d_windows.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "util/avx2.h"

namespace palettize {

namespace detail {
// The table limit is a parameter only so that tests can force the O(n)-memory path on small inputs.
Clustering1D OptimalKMeans1DWithTableLimit(const double* values, const double* weights, size_t n, size_t k,
                                           size_t max_table_entries);
// Tests turn the vector scans off to compare them with the scalar one.
std::atomic<bool> kmeans1d_vector_scans{true};
// Tests turn the windowed path off to compare it with the full DP.
std::atomic<bool> kmeans1d_windows{true};
// Tests turn the pruned path's remainder bounds off (to zero) to compare it with the bound alone.
std::atomic<bool> kmeans1d_remainder{true};
// Tests turn the pruned path's second upper bound (the units' optimum) off to compare it with Lloyd's,
// and count the DP rows this thread computes.
std::atomic<bool> kmeans1d_unit_bound{true};
thread_local uint64_t kmeans1d_rows = 0;
}  // namespace detail

namespace {

constexpr size_t kMaxTableEntries = size_t(1) << 24;
constexpr size_t kMaxReusedValues = size_t(1) << 17;
// Past 65,536 distinct values (fp32 and f64 tensors: never a 16-bit float group), the DP runs only
// inside windows that provably hold the optimal boundaries (kmeans1d_windows.h), which is faster
// from 64 centroids on (at 147k fp32 values and k = 256: 0.46 s of CPU against 1.25 s), and from
// 2^18 values for any k (300k values, k = 16: 0.10 s against 0.14 s).
bool UseWindows(size_t n, size_t k) { return n > 65536 && (k >= 64 || n >= (size_t(1) << 18)); }

using detail::BuildPrefixSums;
using detail::PrefixSums;
using detail::RowMin;
using detail::RowRange;
using detail::ScanRowScalar;
#if PALETTIZE_AVX2
using detail::ScanRowAvx2Any;
using detail::ScanRowsAvx2;
#endif

// The solver's buffers, kept per thread between calls (see OptimalKMeans1DWithTableLimit): a
// grouped config solves tens of thousands of small problems, and allocating afresh for each cost
// more in page faults than the solving itself.
struct Workspace {
  PrefixSums ps;
  std::vector<double> prev, cur;  // D[j-1][.] and D[j][.], indexed by absolute prefix length
  std::vector<uint32_t> arg;      // argmin of the layer being computed
  std::vector<uint32_t> arg_prev;
  std::vector<uint32_t> cross_prev, cross_cur;    // Hirschberg path: where each path crosses mid
  std::vector<uint32_t> table;                    // argmins of every layer, when they fit
  std::vector<size_t> layer_offset, layer_first;  // pruned path: each layer's rows in table
  std::vector<RowRange> short_rows, long_rows;    // one level's rows, by number of candidates
  std::vector<double> rest;                       // pruned path: RemainderBounds for this half
  std::vector<size_t> units;                      // pruned path: the coarser problem's runs
  PrefixSums blocks;                              // pruned path: blocks of candidates (BlockFloor)
  std::vector<double> block_least;
};

class Solver {
 public:
  // Every buffer lives in `ws`, sized here; nothing else is allocated while solving.
  Solver(const double* values, const double* weights, size_t n, size_t table_limit, Workspace& ws)
      : values_(values), n_(n), table_limit_(table_limit), use_avx2_(VectorScans()), ws_(ws) {
    Size();
    shift_ = BuildPrefixSums(values, weights, n, &ws_.ps);
  }

  // The problem whose items are the runs [at[i], at[i + 1]) of `full`'s values, for the DP only.
  // An item's sums are its run's, so a clustering of the items is a clustering of the values that
  // keeps every run whole, and costs the same.
  Solver(const Solver& full, const std::vector<size_t>& at, Workspace& ws)
      : values_(nullptr),
        n_(at.size() - 1),
        shift_(full.shift_),
        table_limit_(full.table_limit_),
        use_avx2_(full.use_avx2_),
        ws_(ws) {
    Size();
    const PrefixSums& f = full.ws_.ps;
    PrefixSums& ps = ws_.ps;
    for (auto* a : {&ps.w, &ps.s1, &ps.s2, &ps.w_lo, &ps.s1_lo, &ps.s2_lo})
      a->resize(n_ + 1 + PrefixSums::kPad);
    for (size_t i = 0; i <= n_; ++i) {
      const size_t q = at[i];
      ps.w[i] = f.w[q], ps.s1[i] = f.s1[q], ps.s2[i] = f.s2[q];
      ps.w_lo[i] = f.w_lo[q], ps.s1_lo[i] = f.s1_lo[q], ps.s2_lo[i] = f.s2_lo[q];
    }
  }

  // The mirrored problem (values negated, in reverse order) of `other`, for the DP only. Its prefix
  // sums are `other`'s suffix sums: a double-double subtraction per entry, no pass over values.
  Solver(const Solver& other, Workspace& ws)
      : values_(nullptr),
        n_(other.n_),
        shift_(-other.shift_),
        table_limit_(other.table_limit_),
        use_avx2_(other.use_avx2_),
        ws_(ws) {
    const size_t n = n_;
    const PrefixSums& o = other.ws_.ps;
    Size();
    for (auto* a : {&ws_.ps.w, &ws_.ps.s1, &ws_.ps.s2, &ws_.ps.w_lo, &ws_.ps.s1_lo, &ws_.ps.s2_lo})
      a->resize(n + 1 + PrefixSums::kPad);
    // Entry q is (a_hi + a_lo) - (b_hi + b_lo) with a the total and b the other's prefix n - q:
    // TwoSum of the his, the lo difference added to its error, as a hi + lo pair.
    auto suffixes = [n](const std::vector<double>& hi, const std::vector<double>& lo, double sign,
                        std::vector<double>& out_hi, std::vector<double>& out_lo) {
      const double a_hi = hi[n], a_lo = lo[n];
      for (size_t q = 0; q <= n; ++q) {
        const double b_hi = hi[n - q], b_lo = lo[n - q];
        const double s = a_hi - b_hi;
        const double bb = s - a_hi;
        const double e = ((a_hi - (s - bb)) - (b_hi + bb)) + (a_lo - b_lo);
        out_hi[q] = sign * s;
        out_lo[q] = sign * e;
      }
    };
    suffixes(o.w, o.w_lo, 1, ws_.ps.w, ws_.ps.w_lo);
    suffixes(o.s1, o.s1_lo, -1, ws_.ps.s1, ws_.ps.s1_lo);
    suffixes(o.s2, o.s2_lo, 1, ws_.ps.s2, ws_.ps.s2_lo);
  }

  // Appends the starts of an optimal k-clustering of values [lo, hi), ascending.
  void Solve(size_t lo, size_t hi, size_t k, std::vector<size_t>& starts);

  // The cost of a good k-clustering of all n values, 1 < k < n: Lloyd's iterations from weighted
  // quantiles. An upper bound on the optimum; `starts` takes the clustering's k starts.
  double LloydCost(size_t k, std::vector<size_t>* starts) const;
  // At most `iterations` of Lloyd's from the k-clustering `starts` (refined in place), each
  // O(k log n) through the prefix sums; returns the cost of the result.
  double Lloyd(std::vector<size_t>* starts, int iterations) const;

  // Pruned forward half of the DP over all n values: layers 1..layers, with `after` more clusters
  // to place right of the last one, keeping only the rows whose cost plus a lower bound on the
  // clusters after them is at most `bound`: rest[p] - lambda x (clusters after), with rest from
  // RemainderBounds. False when a layer keeps no row (a bound below the optimum).
  // Rows of the top layer outside [top_from, top_to] are not needed (the other half cannot meet
  // them).
  bool ForwardHalf(size_t layers, size_t after, double bound, size_t top_from, size_t top_to,
                   const std::vector<double>& rest, double lambda);
  // After ForwardHalf: the prefix lengths kept in the top layer, and their costs there.
  size_t TopBegin() const { return top_begin_; }
  size_t TopEnd() const { return top_end_; }
  double Top(size_t p) const { return ws_.prev[p]; }
  // After ForwardHalf: the starts of the optimal `layers` clusters of the first p values.
  std::vector<size_t> Backtrack(size_t p, size_t layers) const;

  double Cost(size_t m, size_t p) const { return detail::RangeCost(ws_.ps, m, p); }
  size_t size() const { return n_; }

 private:
  static bool VectorScans() {
#if PALETTIZE_AVX2
    return HasAvx2() && detail::kmeans1d_vector_scans;
#else
    return false;
#endif
  }
  // The DP's own buffers for n_ items (the prefix sums are sized by each constructor).
  void Size() {
    for (auto* a : {&ws_.prev, &ws_.cur}) a->resize(n_ + 1 + PrefixSums::kPad);
    for (auto* a : {&ws_.arg, &ws_.arg_prev, &ws_.cross_prev, &ws_.cross_cur}) a->resize(n_ + 1);
  }
  // Up to kBlocks blocks of the candidates [c0, c1] (costs in ws_.prev) for AtLeast: each
  // block's least cost and the prefix sums at its last candidate, in ws_.blocks. Returns the
  // number of blocks.
  size_t BlockFloor(size_t c0, size_t c1);
  // min over the blocks of least cost + Cost(last candidate, p), for p past every candidate.
  double AtLeast(size_t blocks, size_t p);

  RowMin ScanRow(size_t p, size_t begin, size_t end) const {
#if PALETTIZE_AVX2
    if (use_avx2_) return ScanRowAvx2Any(ws_.ps, ws_.prev.data(), p, begin, end);
#endif
    return ScanRowScalar(ws_.ps, ws_.prev.data(), p, begin, end);
  }

  void SolveLayer(size_t first, size_t count, size_t o_lo, size_t o_hi);

  const double* values_;
  size_t n_;
  double shift_ = 0;
  size_t table_limit_;
  bool use_avx2_ = false;
  size_t top_begin_ = 0, top_end_ = 0;
  Workspace& ws_;
  size_t bound_last_ = 0;
};

// Rows first .. first + count - 1 of one layer, their leftmost argmins known to lie in
// [o_lo, o_hi]. This is divide and conquer over the rows, done level by level: row i (1-based)
// is solved once its neighbours i - 2^b and i + 2^b are, where 2^b is i's lowest set bit, and
// their argmins bound its own. The rows of one level are independent of each other, so their
// short scans overlap in the processor instead of waiting on a recursion.
void Solver::SolveLayer(size_t first, size_t count, size_t o_lo, size_t o_hi) {
  detail::kmeans1d_rows += count;
  size_t top = 1;
  while (top * 2 <= count) top *= 2;
  // A level has at most top rows; they are listed by length (without a branch), then scanned.
  if (ws_.short_rows.size() < top) ws_.short_rows.resize(top), ws_.long_rows.resize(top);
  RowRange* const shorts = ws_.short_rows.data();
  RowRange* const longs = ws_.long_rows.data();
  uint32_t* const arg = ws_.arg.data();
  const uint32_t* const arg_prev = ws_.arg_prev.data();
  for (size_t step = top; step >= 1; step /= 2) {
    size_t n_short = 0, n_long = 0;
    for (size_t i = step; i <= count; i += 2 * step) {
      const size_t p = first + i - 1;
      const size_t lo = i > step ? arg[p - step] : o_lo;
      const size_t hi = i + step <= count ? arg[p + step] : o_hi;
      const size_t end = std::min(hi, p - 1);
      // opt[j-1][p] <= opt[j][p] (the last cluster shrinks as clusters are added) prunes the
      // scan, most for the many-centroid layers where the ranges are widest relative to the
      // answer.
      size_t begin = p <= bound_last_ ? std::max<size_t>(lo, arg_prev[p]) : lo;
      // Only a floating-point tie that broke the order of argmins puts begin past end (a branch
      // that is never taken, where std::min's would be taken at random).
      if (begin > end) begin = end;
      const RowRange row{uint32_t(p), uint32_t(begin), uint32_t(end)};
      const bool is_short = end - begin < 4;
      shorts[n_short] = row;
      longs[n_long] = row;
      n_short += is_short;
      n_long += !is_short;
    }
#if PALETTIZE_AVX2
    if (use_avx2_) {
      ScanRowsAvx2(ws_.ps, ws_.prev.data(), shorts, n_short, longs, n_long, arg, ws_.cur.data());
      continue;
    }
#endif
    for (const auto& [rows, n] : {std::pair{shorts, n_short}, std::pair{longs, n_long}}) {
      for (size_t r = 0; r < n; ++r) {
        const RowMin m = ScanRowScalar(ws_.ps, ws_.prev.data(), rows[r].p, rows[r].begin, rows[r].end);
        arg[rows[r].p] = uint32_t(m.arg);
        ws_.cur[rows[r].p] = m.value;
      }
    }
  }
}

void Solver::Solve(size_t lo, size_t hi, size_t k, std::vector<size_t>& starts) {
  const size_t n = hi - lo;
  if (k == 1) {
    starts.push_back(lo);
    return;
  }
  if (k >= n) {
    for (size_t p = lo; p < hi; ++p) starts.push_back(p);
    return;
  }
  // Layer j only needs prefixes that leave at least one value for each of the k - j clusters
  // after it: p in [lo + j, hi - k + j], rows_per_layer of them.
  const size_t rows_per_layer = n - k + 1;
  const bool use_table = (k - 1) * (n + 1) <= table_limit_;
  std::vector<uint32_t>& table = ws_.table;
  if (use_table) table.resize((k - 2) * rows_per_layer);
  const size_t mid = k / 2;  // non-table path: find the boundary between clusters mid and mid+1

  for (size_t p = lo + 1; p <= hi - k + 1; ++p) ws_.prev[p] = Cost(lo, p);
  for (size_t j = 2; j < k; ++j) {
    const size_t first = lo + j;
    bound_last_ = j == 2 ? 0 : first + rows_per_layer - 2;
    SolveLayer(first, rows_per_layer, first - 1, first + rows_per_layer - 2);
    if (use_table) {
      std::copy(ws_.arg.begin() + first, ws_.arg.begin() + first + rows_per_layer,
                table.begin() + (j - 2) * rows_per_layer);
    } else if (j == mid + 1) {
      for (size_t p = first; p < first + rows_per_layer; ++p) ws_.cross_cur[p] = ws_.arg[p];
    } else if (j > mid + 1) {
      for (size_t p = first; p < first + rows_per_layer; ++p) ws_.cross_cur[p] = ws_.cross_prev[ws_.arg[p]];
    }
    std::swap(ws_.prev, ws_.cur);
    std::swap(ws_.arg_prev, ws_.arg);
    std::swap(ws_.cross_prev, ws_.cross_cur);
  }
  // The last layer has a single row, p = hi.
  size_t last = lo + k - 1;
  last = ScanRow(hi, last, hi - 1).arg;

  if (use_table) {
    std::vector<size_t> bounds(k);
    bounds[0] = lo;
    bounds[k - 1] = last;
    size_t p = last;
    for (size_t j = k - 1; j >= 2; --j) {
      p = table[(j - 2) * rows_per_layer + (p - (lo + j))];
      bounds[j - 1] = p;
    }
    starts.insert(starts.end(), bounds.begin(), bounds.end());
    return;
  }
  const size_t split = k == mid + 1 ? last : ws_.cross_prev[last];
  Solve(lo, split, mid, starts);
  Solve(split, hi, k - mid, starts);
}

double Solver::LloydCost(size_t k, std::vector<size_t>* starts) const {
  const size_t n = n_;
  // Start from the high-resolution optimum: cluster density proportional to the cube root of the
  // value density (Panter and Dite). Each value i stands for the interval half way to its
  // neighbours, density w_i / gap_i, so its share is w_i^(1/3) gap_i^(2/3). Quantiles of the
  // weights alone put far too few clusters into heavy tails; this starts Lloyd near the optimum.
  // Only a start, so a cube root to a few percent does: the exponent divided by three.
  auto rough_cbrt = [](float x) {
    if (!(x > 0)) return 0.0f;
    uint32_t i;
    std::memcpy(&i, &x, 4);
    i = i / 3 + 709921077u;
    std::memcpy(&x, &i, 4);
    return x;
  };
  std::vector<double> share(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const double left = i > 0 ? values_[i] - values_[i - 1] : 0;
    const double right = i + 1 < n ? values_[i + 1] - values_[i] : 0;
    const double gap = 0.5 * (left + right) * (i == 0 || i + 1 == n ? 2 : 1);
    const double w = (ws_.ps.w[i + 1] - ws_.ps.w[i]) + (ws_.ps.w_lo[i + 1] - ws_.ps.w_lo[i]);
    share[i + 1] = share[i] + double(rough_cbrt(float(w * gap * gap)));
  }
  starts->resize(k);
  for (size_t j = 0; j < k; ++j) {
    (*starts)[j] = size_t(std::lower_bound(share.begin(), share.end(), share[n] * j / k) - share.begin());
  }
  // Ten iterations leave the cost within 0.1% of where a hundred would.
  return Lloyd(starts, 10);
}

double Solver::Lloyd(std::vector<size_t>* starts, int iterations) const {
  const size_t n = n_, k = starts->size();
  std::vector<size_t> b(k + 1), next(k + 1);
  // Boundary j must leave room for one value in each cluster on either side of it.
  auto clamp = [&](std::vector<size_t>& v) {
    for (size_t j = 1; j < k; ++j) v[j] = std::min(std::max(v[j], v[j - 1] + 1), n - (k - j));
  };
  std::copy(starts->begin(), starts->end(), b.begin());
  b[0] = next[0] = 0;
  b[k] = next[k] = n;
  clamp(b);
  std::vector<double> c(k);
  for (int iter = 0; iter < iterations; ++iter) {
    for (size_t j = 0; j < k; ++j) {
      const double w = (ws_.ps.w[b[j + 1]] - ws_.ps.w[b[j]]) + (ws_.ps.w_lo[b[j + 1]] - ws_.ps.w_lo[b[j]]);
      const double s1 =
          (ws_.ps.s1[b[j + 1]] - ws_.ps.s1[b[j]]) + (ws_.ps.s1_lo[b[j + 1]] - ws_.ps.s1_lo[b[j]]);
      c[j] = s1 / w + shift_;
    }
    for (size_t j = 1; j < k; ++j) {
      const double mid = 0.5 * (c[j - 1] + c[j]);
      next[j] = size_t(std::upper_bound(values_, values_ + n, mid) - values_);
    }
    clamp(next);
    if (next == b) break;
    std::swap(b, next);
  }
  double cost = 0;
  for (size_t j = 0; j < k; ++j) cost += Cost(b[j], b[j + 1]);
  starts->assign(b.begin(), b.end() - 1);
  return cost;
}

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

// X and W are double, or float and uint32_t (the float32 path's values and counts): each converts
// exactly to long double, so both give the bits of the same numbers as doubles.
template <class X, class W>
Clustering1D Finish(const X* values, const W* weights, size_t n, std::vector<size_t> starts) {
  using Real = long double;
  Clustering1D out;
  out.starts = std::move(starts);
  const size_t k = out.starts.size();
  out.centroids.resize(k);
  Real sse = 0;
  for (size_t j = 0; j < k; ++j) {
    const size_t b = out.starts[j], e = j + 1 < k ? out.starts[j + 1] : n;
    // Relative to the run's first value, so the mean keeps the run's own precision, and the
    // run's error sum d^2 - (sum d)^2 / w cancels at most by (spread / deviation)^2 in long double.
    const Real base = values[b];
    Real sw = 0, swd = 0, swd2 = 0;
    if constexpr (std::is_integral_v<W>) {
      // Counts: their long double sum is exact (below 2^64), so it is their integer sum.
      uint64_t count = 0;
      for (size_t i = b; i < e; ++i) {
        const Real d = Real(values[i]) - base, wd = Real(weights[i]) * d;
        count += weights[i];
        swd += wd;
        swd2 += wd * d;
      }
      sw = Real(count);
    } else {
      for (size_t i = b; i < e; ++i) {
        const Real wd = Real(weights[i]) * (Real(values[i]) - base);
        sw += weights[i];
        swd += wd;
        swd2 += wd * (Real(values[i]) - base);
      }
    }
    double c = double(base + swd / sw);
    c = std::min(std::max(c, double(values[b])), double(values[e - 1]));
    out.centroids[j] = c;
    sse += std::max(swd2 - swd * swd / sw, Real(0));
  }
  out.sse = double(sse);
  return out;
}

}  // namespace

namespace detail {

Clustering1D OptimalKMeans1DWithTableLimit(const double* values, const double* weights, size_t n, size_t k,
                                           size_t max_table_entries) {
  if (n == 0 || k == 0) return {};
  k = std::min(k, n);
  std::vector<size_t> starts;
  starts.reserve(k);
  if (k == 1 || k == n) {
    for (size_t j = 0; j < k; ++j) starts.push_back(k == 1 ? 0 : j);
  } else if (UseWindows(n, k) && detail::kmeans1d_windows &&
             WindowedKMeans1D(values, weights, n, k, &starts)) {
  } else {
    // Problems up to kMaxReusedValues distinct values reuse this thread's buffers; larger ones
    // (fp32 tensors, per tensor) get their own, freed on return, so no thread keeps a large one.
    thread_local Workspace reused[4];
    Workspace own[4];
    Workspace* ws = n <= kMaxReusedValues ? reused : own;
    const bool table_fits = (k - 1) * (n + 1) <= max_table_entries;
    if (!table_fits || !SolvePruned(values, weights, n, k, ws, starts)) {
      Solver solver(values, weights, n, max_table_entries, ws[0]);
      solver.Solve(0, n, k, starts);
    }
  }
  return Finish(values, weights, n, std::move(starts));
}

}  // namespace detail

Clustering1D OptimalKMeans1D(const double* values, const double* weights, size_t n, size_t k) {
  return detail::OptimalKMeans1DWithTableLimit(values, weights, n, k, kMaxTableEntries);
}

Clustering1D OptimalKMeans1D(const float* values, const uint32_t* counts, size_t n, size_t k) {
  if (n == 0 || k == 0) return {};
  k = std::min(k, n);
  std::vector<size_t> starts;
  if (k == 1 || k == n) {
    for (size_t j = 0; j < k; ++j) starts.push_back(k == 1 ? 0 : j);
    return Finish(values, counts, n, std::move(starts));
  }
  if (UseWindows(n, k) && detail::kmeans1d_windows && detail::WindowedKMeans1D(values, counts, n, k, &starts))
    return Finish(values, counts, n, std::move(starts));
  // The other solvers take doubles: the same numbers, so the same result.
  const std::vector<double> x(values, values + n), w(counts, counts + n);
  return OptimalKMeans1D(x.data(), w.data(), n, k);
}

}  // namespace palettize
