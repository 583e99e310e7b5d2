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
// Most problems take the pruned path (SolvePruned, kmeans1d_pruned.cc): rows that cannot lie on an optimal
// path are skipped, and the DP runs from both ends. Rows are scanned four candidates at a time with AVX2
// where the processor has it, bit for bit as the scalar scan.
//
// Recovering the partition takes an argmin table of (k-1) x n uint32. When that would exceed
// kMaxTableEntries (64 MiB: 256 centroids over all 65,536 fp16 values still fit) we keep O(n)
// memory instead, Hirschberg-style: the forward pass also carries, for every DP state, where its
// path crosses the middle layer. That fixes one boundary of the optimum, and the two sides are
// solved recursively as independent, smaller problems, about twice the work of one pass in total.
#include "cluster/kmeans1d.h"

#include "cluster/kmeans1d_solver.h"
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
// Tests turn the pruned path's second upper bound (the units' optimum) off to compare it with Lloyd's.
std::atomic<bool> kmeans1d_unit_bound{true};
// Tests count the DP rows this thread computes.
uint64_t& KMeans1DRows() {
  thread_local uint64_t rows = 0;
  return rows;
}
}  // namespace detail

namespace {

using detail::kMaxTableEntries;
using detail::Solver;
using detail::Workspace;

constexpr size_t kMaxReusedValues = size_t(1) << 17;
// Past 65,536 distinct values (fp32 and f64 tensors: never a 16-bit float group), the DP runs only
// inside windows that provably hold the optimal boundaries (kmeans1d_windows.h), which is faster
// from 64 centroids on (at 147k fp32 values and k = 256: 0.46 s of CPU against 1.25 s), and from
// 2^18 values for any k (300k values, k = 16: 0.10 s against 0.14 s).
bool UseWindows(size_t n, size_t k) { return n > 65536 && (k >= 64 || n >= (size_t(1) << 18)); }

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

// One solve, for either array type: the trivial cases and the windowed path take the arrays as they
// are; the pruned and full DPs take doubles (from the float path: the same numbers, so the same
// result), and Finish the arrays themselves.
template <class X, class W>
Clustering1D Solve(const X* values, const W* weights, size_t n, size_t k, size_t max_table_entries) {
  if (n == 0 || k == 0) return {};
  k = std::min(k, n);
  std::vector<size_t> starts;
  starts.reserve(k);
  if (k == 1 || k == n) {
    for (size_t j = 0; j < k; ++j) starts.push_back(k == 1 ? 0 : j);
  } else if (UseWindows(n, k) && detail::kmeans1d_windows &&
             detail::WindowedKMeans1D(values, weights, n, k, &starts)) {
  } else if constexpr (!std::is_same_v<X, double>) {
    const std::vector<double> x(values, values + n), w(weights, weights + n);
    return Solve(x.data(), w.data(), n, k, max_table_entries);
  } else {
    // Problems up to kMaxReusedValues distinct values reuse this thread's buffers; larger ones
    // (fp32 tensors, per tensor) get their own, freed on return, so no thread keeps a large one.
    thread_local Workspace reused[4];
    Workspace own[4];
    Workspace* ws = n <= kMaxReusedValues ? reused : own;
    const bool table_fits = (k - 1) * (n + 1) <= max_table_entries;
    if (!table_fits || !detail::SolvePruned(values, weights, n, k, ws, starts)) {
      Solver solver(values, weights, n, max_table_entries, ws[0]);
      solver.Solve(0, n, k, starts);
    }
  }
  return Finish(values, weights, n, std::move(starts));
}

}  // namespace

namespace detail {

Clustering1D OptimalKMeans1DWithTableLimit(const double* values, const double* weights, size_t n, size_t k,
                                           size_t max_table_entries) {
  return Solve(values, weights, n, k, max_table_entries);
}

}  // namespace detail

Clustering1D OptimalKMeans1D(const double* values, const double* weights, size_t n, size_t k) {
  return Solve(values, weights, n, k, kMaxTableEntries);
}

Clustering1D OptimalKMeans1D(const float* values, const uint32_t* counts, size_t n, size_t k) {
  return Solve(values, counts, n, k, kMaxTableEntries);
}

}  // namespace palettize
