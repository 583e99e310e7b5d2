#include "cluster/nearest_vector.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "util/avx2.h"

// 32-byte vector types in functions built for the baseline target draw GCC's ABI note; the kernel
// below is inlined into both of its copies, so no ABI is crossed.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace palettize {

namespace {

typedef double D4 __attribute__((vector_size(32)));
typedef int64_t L4 __attribute__((vector_size(32)));

// Brute force over `columns` (t * kp + j, kp a multiple of 4) for m queries: lane l tries entries
// l, l + 4, ... and keeps the earliest of the least error (strict <); then the least error of the
// lanes, the lowest index on ties. The errors are Search's, bit for bit: the same operations in
// the same order per entry, no FMA on either target. errors may be null.
template <size_t kDim>
inline __attribute__((always_inline)) void ManyT(const double* columns, size_t kp, size_t any_dim,
                                                 const double* xs, size_t m, uint32_t* out, double* errors) {
  const size_t dim = kDim ? kDim : any_dim;
  for (size_t q = 0; q < m; ++q) {
    const double* x = xs + q * dim;
    D4 best = D4{} + 0.0;
    L4 id = {0, 1, 2, 3}, index = {0, 1, 2, 3};
    for (size_t j = 0; j < kp; j += 4) {
      D4 e = D4{} + 0.0;
      for (size_t t = 0; t < dim; ++t) {
        D4 c;
        std::memcpy(&c, &columns[t * kp + j], sizeof c);
        const D4 d = (D4{} + x[t]) - c;
        e += d * d;
      }
      if (j == 0) {
        best = e;
        continue;
      }
      index += 4;
      const L4 lt = e < best;
      best = D4((L4(e) & lt) | (L4(best) & ~lt));
      id = (index & lt) | (id & ~lt);
    }
    // The lanes merged without a branch: the least error, then the lowest index holding it.
    D4 low = best;
    D4 t = __builtin_shufflevector(low, low, 2, 3, 0, 1);
    low = D4((L4(t) & (t < low)) | (L4(low) & ~(t < low)));
    t = __builtin_shufflevector(low, low, 1, 0, 3, 2);
    low = D4((L4(t) & (t < low)) | (L4(low) & ~(t < low)));
    L4 ids = (id & (best == low)) | ((L4{} + INT64_MAX) & ~(best == low));
    L4 u = __builtin_shufflevector(ids, ids, 2, 3, 0, 1);
    ids = (u & (u < ids)) | (ids & ~(u < ids));
    u = __builtin_shufflevector(ids, ids, 1, 0, 3, 2);
    ids = (u & (u < ids)) | (ids & ~(u < ids));
    out[q] = uint32_t(ids[0]);
    if (errors) errors[q] = low[0];  // every lane of low holds the least error
  }
}

void ManyBase(const double* columns, size_t kp, size_t dim, const double* xs, size_t m, uint32_t* out,
              double* errors) {
  if (dim == 2) return ManyT<2>(columns, kp, dim, xs, m, out, errors);
  ManyT<0>(columns, kp, dim, xs, m, out, errors);
}
#if PALETTIZE_AVX2
__attribute__((target("avx2"))) void ManyAvx2(const double* columns, size_t kp, size_t dim, const double* xs,
                                              size_t m, uint32_t* out, double* errors) {
  if (dim == 2) return ManyT<2>(columns, kp, dim, xs, m, out, errors);
  ManyT<0>(columns, kp, dim, xs, m, out, errors);
}
#endif

}  // namespace

NearestVector::NearestVector(const double* entries, size_t k, size_t dim) : k_(k), dim_(dim) {
  index_.resize(k);
  std::iota(index_.begin(), index_.end(), 0u);
  std::stable_sort(index_.begin(), index_.end(),
                   [&](uint32_t a, uint32_t b) { return entries[a * dim] < entries[b * dim]; });
  rows_.resize(k * dim);
  for (size_t j = 0; j < k; ++j) std::copy_n(entries + size_t(index_[j]) * dim, dim, &rows_[j * dim]);
  if (k <= kBruteMax) {
    kp_ = (k + 3) / 4 * 4;
    columns_.resize(kp_ * dim);
    for (size_t j = 0; j < kp_; ++j)
      for (size_t t = 0; t < dim; ++t) columns_[t * kp_ + j] = entries[(j < k ? j : 0) * dim + t];
  }
}

uint32_t NearestVector::operator()(const double* x, double* error) const {
  if (columns_.empty() || !std::all_of(x, x + dim_, [](double v) { return std::isfinite(v); }))
    return Search(x, error);
  uint32_t index;
  Many(x, 1, &index, error);
  return index;
}

void NearestVector::Many(const double* xs, size_t m, uint32_t* out, double* errors) const {
  if (columns_.empty()) {
    for (size_t q = 0; q < m; ++q) out[q] = Search(xs + q * dim_, errors ? &errors[q] : nullptr);
    return;
  }
#if PALETTIZE_AVX2
  if (HasAvx2()) return ManyAvx2(columns_.data(), kp_, dim_, xs, m, out, errors);
#endif
  ManyBase(columns_.data(), kp_, dim_, xs, m, out, errors);
}

uint32_t NearestVector::Search(const double* x, double* error) const {
  const double x0 = x[0];
  // First sorted position whose first coordinate is >= x0.
  size_t lo = 0, hi = k_;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    if (rows_[mid * dim_] < x0)
      lo = mid + 1;
    else
      hi = mid;
  }
  double best = std::numeric_limits<double>::infinity();
  uint32_t best_index = std::numeric_limits<uint32_t>::max();
  auto consider = [&](size_t j) -> bool {  // false once this direction can no longer win
    const double* e = &rows_[j * dim_];
    const double d0 = x0 - e[0];
    double err = 0;
    err += d0 * d0;
    if (err > best) return false;
    for (size_t t = 1; t < dim_; ++t) {
      const double d = x[t] - e[t];
      err += d * d;
    }
    if (err < best || (err == best && index_[j] < best_index)) {
      best = err;
      best_index = index_[j];
    }
    return true;
  };
  size_t up = lo, down = lo;  // next candidates: rows_[up], rows_[down - 1]
  bool up_open = up<k_, down_open = down> 0;
  while (up_open || down_open) {
    // The side nearer in the first coordinate first, so `best` falls fast.
    const bool take_up = up_open && (!down_open || rows_[up * dim_] - x0 <= x0 - rows_[(down - 1) * dim_]);
    if (take_up) {
      up_open = consider(up) && ++up < k_;
    } else {
      down_open = consider(down - 1) && --down > 0;
    }
  }
  if (error) *error = best;
  return best_index;
}

}  // namespace palettize
