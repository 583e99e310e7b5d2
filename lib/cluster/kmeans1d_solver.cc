// The DP solver of exact 1-D k-means (kmeans1d_solver.h): its three problems (the values, their
// mirror, runs of them kept whole), each layer's divide and conquer, the full DP with its argmin
// table or Hirschberg's split, and Lloyd's iterations for an upper bound.
#include "cluster/kmeans1d_solver.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace palettize::detail {

namespace {

// One of the mirrored problem's prefix sums from the other's (hi + lo pairs over n values): entry q
// is sign x ((a_hi + a_lo) - (b_hi + b_lo)), a the total and b the other's prefix n - q, as TwoSum
// of the his with the lo difference added to its error. Each entry on its own, so the compiler
// vectorizes it.
__attribute__((always_inline)) inline void MirrorSums(const double* hi, const double* lo, size_t n,
                                                      double sign, double* out_hi, double* out_lo) {
  const double a_hi = hi[n], a_lo = lo[n];
  for (size_t q = 0; q <= n; ++q) {
    const double b_hi = hi[n - q], b_lo = lo[n - q];
    const double s = a_hi - b_hi;
    const double bb = s - a_hi;
    const double e = ((a_hi - (s - bb)) - (b_hi + bb)) + (a_lo - b_lo);
    out_hi[q] = sign * s;
    out_lo[q] = sign * e;
  }
}

#if PALETTIZE_AVX2
// Four entries a vector (the target has no FMA to contract into: the same bits).
__attribute__((target("avx2"))) void MirrorSumsAvx2(const double* hi, const double* lo, size_t n, double sign,
                                                    double* out_hi, double* out_lo) {
  MirrorSums(hi, lo, n, sign, out_hi, out_lo);
}
#endif

}  // namespace

Solver::Solver(const double* values, const double* weights, size_t n, size_t table_limit, Workspace& ws)
    : values_(values), n_(n), table_limit_(table_limit), use_avx2_(VectorScans()), ws_(ws) {
  Size();
  shift_ = BuildPrefixSums(values, weights, n, &ws_.ps);
}

Solver::Solver(const Solver& full, const std::vector<size_t>& at, Workspace& ws)
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

Solver::Solver(const Solver& other, Workspace& ws)
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
  auto mirror = [&](const std::vector<double>& hi, const std::vector<double>& lo, double sign,
                    std::vector<double>& out_hi, std::vector<double>& out_lo) {
#if PALETTIZE_AVX2
    if (use_avx2_) return MirrorSumsAvx2(hi.data(), lo.data(), n, sign, out_hi.data(), out_lo.data());
#endif
    MirrorSums(hi.data(), lo.data(), n, sign, out_hi.data(), out_lo.data());
  };
  mirror(o.w, o.w_lo, 1, ws_.ps.w, ws_.ps.w_lo);
  mirror(o.s1, o.s1_lo, -1, ws_.ps.s1, ws_.ps.s1_lo);
  mirror(o.s2, o.s2_lo, 1, ws_.ps.s2, ws_.ps.s2_lo);
}

// Rows first .. first + count - 1 of one layer, their leftmost argmins known to lie in
// [o_lo, o_hi]. This is divide and conquer over the rows, done level by level: row i (1-based)
// is solved once its neighbours i - 2^b and i + 2^b are, where 2^b is i's lowest set bit, and
// their argmins bound its own. The rows of one level are independent of each other, so their
// short scans overlap in the processor instead of waiting on a recursion.
void Solver::SolveLayer(size_t first, size_t count, size_t o_lo, size_t o_hi) {
  KMeans1DRows() += count;
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

}  // namespace palettize::detail
