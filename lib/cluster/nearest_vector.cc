#include "cluster/nearest_vector.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace palettize {

NearestVector::NearestVector(const double* entries, size_t k, size_t dim) : k_(k), dim_(dim) {
  index_.resize(k);
  std::iota(index_.begin(), index_.end(), 0u);
  std::stable_sort(index_.begin(), index_.end(),
                   [&](uint32_t a, uint32_t b) { return entries[a * dim] < entries[b * dim]; });
  rows_.resize(k * dim);
  for (size_t j = 0; j < k; ++j) std::copy_n(entries + size_t(index_[j]) * dim, dim, &rows_[j * dim]);
}

uint32_t NearestVector::operator()(const double* x, double* error) const {
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
