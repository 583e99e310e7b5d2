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
// They are accumulated in long double and stored as a double-double hi + lo pair, so a range sum is
// accurate relative to the range itself rather than to the prefix totals, while the hot loop stays
// in double. What remains is the S2 - S1^2/W cancellation inside a cluster, relative error about
// 1e-16 * (cluster mean / cluster spread)^2 in the shifted frame. Centroids and sse are recomputed
// directly from the final runs in long double.
//
// Recovering the partition takes an argmin table of (k-1) x n uint32. When that would exceed
// kMaxTableEntries (64 MiB: 256 centroids over all 65,536 fp16 values still fit) we keep O(n)
// memory instead, Hirschberg-style: the forward pass also carries, for every DP state, where its
// path crosses the middle layer. That fixes one boundary of the optimum, and the two sides are
// solved recursively as independent, smaller problems, about twice the work of one pass in total.
#include "cluster/kmeans1d.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

namespace palettize {

namespace detail {
// The table limit is a parameter only so that tests can force the O(n)-memory path on small inputs.
Clustering1D OptimalKMeans1DWithTableLimit(const double* values, const double* weights, size_t n,
                                           size_t k, size_t max_table_entries);
}  // namespace detail

namespace {

constexpr size_t kMaxTableEntries = size_t(1) << 24;

class Solver {
 public:
  Solver(const double* values, const double* weights, size_t n, size_t table_limit)
      : table_limit_(table_limit),
        prefix_(n + 1),
        prev_(n + 1),
        cur_(n + 1),
        arg_(n + 1),
        arg_prev_(n + 1),
        cross_prev_(n + 1),
        cross_cur_(n + 1) {
    long double sw = 0, swx = 0;
    for (size_t i = 0; i < n; ++i) {
      sw += weights[i];
      swx += static_cast<long double>(weights[i]) * values[i];
    }
    const long double shift = swx / sw;
    long double w = 0, s1 = 0, s2 = 0;
    prefix_[0] = Prefix{};
    for (size_t i = 0; i < n; ++i) {
      const long double x = values[i] - shift;
      w += weights[i];
      s1 += weights[i] * x;
      s2 += weights[i] * x * x;
      prefix_[i + 1] = Prefix{Hi(w), Hi(s1), Hi(s2), Lo(w), Lo(s1), Lo(s2)};
    }
  }

  // Appends the starts of an optimal k-clustering of values [lo, hi), ascending.
  void Solve(size_t lo, size_t hi, size_t k, std::vector<size_t>& starts);

 private:
  // The hi parts of two nearby prefixes cancel exactly (Sterbenz), so hi difference plus lo
  // difference gives W, S1, S2 of the range to double precision relative to the range itself, not
  // to the prefix totals; that is what long double prefix sums buy, at double speed.
  double Cost(size_t m, size_t p) const {
    const Prefix& a = prefix_[m];
    const Prefix& b = prefix_[p];
    const double w = (b.w - a.w) + (b.w_lo - a.w_lo);
    const double s1 = (b.s1 - a.s1) + (b.s1_lo - a.s1_lo);
    const double s2 = (b.s2 - a.s2) + (b.s2_lo - a.s2_lo);
    const double c = s2 - s1 * (s1 / w);
    return c > 0 ? c : 0;
  }

  double Entry(size_t p, size_t m) const { return prev_[m] + Cost(m, p); }

  void DivideConquer(size_t r_lo, size_t r_hi, size_t o_lo, size_t o_hi);

  // Prefix sums of w, w*x, w*x^2 (x shifted by the weighted mean), accumulated in long double and
  // kept as a double-double hi + lo pair; one struct per index keeps a cost lookup to two lines.
  struct Prefix {
    double w = 0, s1 = 0, s2 = 0;
    double w_lo = 0, s1_lo = 0, s2_lo = 0;
  };
  static double Hi(long double v) { return double(v); }
  static double Lo(long double v) { return double(v - static_cast<long double>(double(v))); }

  size_t table_limit_;
  std::vector<Prefix> prefix_;
  std::vector<double> prev_, cur_;  // D[j-1][.] and D[j][.], indexed by absolute prefix length
  std::vector<uint32_t> arg_;     // argmin of the layer being computed
  std::vector<uint32_t> arg_prev_;
  size_t bound_last_ = 0;
  std::vector<uint32_t> cross_prev_, cross_cur_;
};

// Rows [r_lo, r_hi], their leftmost argmins known to lie in [o_lo, o_hi].
void Solver::DivideConquer(size_t r_lo, size_t r_hi, size_t o_lo, size_t o_hi) {
  while (r_lo <= r_hi) {
    const size_t p = r_lo + (r_hi - r_lo) / 2;
    const size_t end = std::min(o_hi, p - 1);
    // opt[j-1][p] <= opt[j][p] (the last cluster shrinks as clusters are added) prunes the scan,
    // most for the many-centroid layers where the D&C ranges are widest relative to the answer.
    // The min() guards against a floating-point tie having broken that order.
    const size_t begin =
        p <= bound_last_ ? std::min(end, std::max<size_t>(o_lo, arg_prev_[p])) : o_lo;
    const Prefix b = prefix_[p];
    size_t best = begin;
    double best_value = std::numeric_limits<double>::infinity();
    size_t m = begin;
    for (; m <= end; ++m) {
      const Prefix& a = prefix_[m];
      const double w = (b.w - a.w) + (b.w_lo - a.w_lo);
      const double s1 = (b.s1 - a.s1) + (b.s1_lo - a.s1_lo);
      const double s2 = (b.s2 - a.s2) + (b.s2_lo - a.s2_lo);
      const double v = prev_[m] + std::max(s2 - s1 * (s1 / w), 0.0);
      if (v < best_value) {
        best_value = v;
        best = m;
      }
    }
    arg_[p] = uint32_t(best);
    cur_[p] = best_value;
    if (p > r_lo) DivideConquer(r_lo, p - 1, o_lo, best);
    r_lo = p + 1;
    o_lo = best;
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
  std::vector<uint32_t> table;
  if (use_table) table.resize((k - 2) * rows_per_layer);
  const size_t mid = k / 2;  // non-table path: find the boundary between clusters mid and mid+1

  for (size_t p = lo + 1; p <= hi - k + 1; ++p) prev_[p] = Cost(lo, p);
  for (size_t j = 2; j < k; ++j) {
    const size_t first = lo + j;
    bound_last_ = j == 2 ? 0 : first + rows_per_layer - 2;
    DivideConquer(first, first + rows_per_layer - 1, first - 1, first + rows_per_layer - 2);
    if (use_table) {
      std::copy(arg_.begin() + first, arg_.begin() + first + rows_per_layer,
                table.begin() + (j - 2) * rows_per_layer);
    } else if (j == mid + 1) {
      for (size_t p = first; p < first + rows_per_layer; ++p) cross_cur_[p] = arg_[p];
    } else if (j > mid + 1) {
      for (size_t p = first; p < first + rows_per_layer; ++p) cross_cur_[p] = cross_prev_[arg_[p]];
    }
    std::swap(prev_, cur_);
    std::swap(arg_prev_, arg_);
    std::swap(cross_prev_, cross_cur_);
  }
  // The last layer has a single row, p = hi.
  size_t last = lo + k - 1;
  double best = Entry(hi, last);
  for (size_t m = last + 1; m < hi; ++m) {
    const double v = Entry(hi, m);
    if (v < best) {
      best = v;
      last = m;
    }
  }

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
  const size_t split = k == mid + 1 ? last : cross_prev_[last];
  Solve(lo, split, mid, starts);
  Solve(split, hi, k - mid, starts);
}

Clustering1D Finish(const double* values, const double* weights, size_t n,
                    std::vector<size_t> starts) {
  using Real = long double;
  Clustering1D out;
  out.starts = std::move(starts);
  const size_t k = out.starts.size();
  out.centroids.resize(k);
  Real sse = 0;
  for (size_t j = 0; j < k; ++j) {
    const size_t b = out.starts[j], e = j + 1 < k ? out.starts[j + 1] : n;
    // Relative to the run's first value, so the mean keeps the run's own precision.
    const Real base = values[b];
    Real sw = 0, swd = 0;
    for (size_t i = b; i < e; ++i) {
      sw += weights[i];
      swd += Real(weights[i]) * (Real(values[i]) - base);
    }
    double c = double(base + swd / sw);
    c = std::min(std::max(c, values[b]), values[e - 1]);
    out.centroids[j] = c;
    for (size_t i = b; i < e; ++i) {
      const Real d = Real(values[i]) - c;
      sse += weights[i] * d * d;
    }
  }
  out.sse = double(sse);
  return out;
}

}  // namespace

namespace detail {

Clustering1D OptimalKMeans1DWithTableLimit(const double* values, const double* weights, size_t n,
                                           size_t k, size_t max_table_entries) {
  if (n == 0 || k == 0) return {};
  k = std::min(k, n);
  std::vector<size_t> starts;
  starts.reserve(k);
  if (k == 1 || k == n) {
    for (size_t j = 0; j < k; ++j) starts.push_back(k == 1 ? 0 : j);
  } else {
    Solver solver(values, weights, n, max_table_entries);
    solver.Solve(0, n, k, starts);
  }
  return Finish(values, weights, n, std::move(starts));
}

}  // namespace detail

Clustering1D OptimalKMeans1D(const double* values, const double* weights, size_t n, size_t k) {
  return detail::OptimalKMeans1DWithTableLimit(values, weights, n, k, kMaxTableEntries);
}

}  // namespace palettize
