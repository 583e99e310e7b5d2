// The dynamic program of exact 1-D k-means (kmeans1d.cc): its per-thread buffers and its solver,
// the full DP over every row (Solve) and the two halves of the pruned one (ForwardHalf,
// kmeans1d_pruned.cc). Internal to lib/cluster.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "cluster/kmeans1d_rows.h"
#include "util/avx2.h"

namespace palettize::detail {

// kmeans1d.cc: tests turn the vector scans off to compare them with the scalar one, and count the
// DP rows this thread computes (a function: a thread_local shared between files through extern
// is read through a wrapper that UBSan flagged as a null load in the tests).
extern std::atomic<bool> kmeans1d_vector_scans;
uint64_t& KMeans1DRows();

// The argmin table's largest size (64 MiB of uint32): past it the full DP keeps O(n) memory.
constexpr size_t kMaxTableEntries = size_t(1) << 24;

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
  Solver(const double* values, const double* weights, size_t n, size_t table_limit, Workspace& ws);

  // The problem whose items are the runs [at[i], at[i + 1]) of `full`'s values, for the DP only.
  // An item's sums are its run's, so a clustering of the items is a clustering of the values that
  // keeps every run whole, and costs the same.
  Solver(const Solver& full, const std::vector<size_t>& at, Workspace& ws);

  // The mirrored problem (values negated, in reverse order) of `other`, for the DP only. Its prefix
  // sums are `other`'s suffix sums: a double-double subtraction per entry, no pass over values.
  Solver(const Solver& other, Workspace& ws);

  // Appends the starts of an optimal k-clustering of values [lo, hi), ascending.
  void Solve(size_t lo, size_t hi, size_t k, std::vector<size_t>& starts);

  // The cost of a good k-clustering of all n values, 1 < k < n: Lloyd's iterations from weighted
  // quantiles. An upper bound on the optimum; `starts` takes the clustering's k starts.
  // LloydCost and Lloyd read the values: only a Solver made from values (the first constructor)
  // has them; the runs' and the mirrored problems are for the DP only.
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

// The pruned path (kmeans1d_pruned.cc): the starts of an optimal k-clustering of the n values,
// 1 < k < n, appended to `starts`; `ws` holds four workspaces. False, and nothing appended, if
// floating point defeated its bounds (the full DP, Solver::Solve, then runs).
bool SolvePruned(const double* values, const double* weights, size_t n, size_t k, Workspace* ws,
                 std::vector<size_t>& starts);

}  // namespace palettize::detail
