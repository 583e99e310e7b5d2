// The exact nearest entry of a vector table, without trying every entry.
//
// Entries are sorted by their first coordinate; a query walks outwards from its own first
// coordinate and stops in each direction once (e_0 - x_0)^2 alone exceeds the best error found.
// The error is sum_t (x_t - e_t)^2 in double, summed in t order, and ties go to the lowest entry
// index: exactly what trying every entry in index order gives (the skipped entries' errors are
// strictly larger, as adding non-negative terms never lowers a rounded sum). Small tables
// (k <= kBruteMax) and finite queries try every entry instead, four at a time without branches:
// the same errors, the same tie rule, and faster than the search's unpredictable branches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize {

class NearestVector {
 public:
  // entries: k x dim, row-major; k >= 1.
  NearestVector(const double* entries, size_t k, size_t dim);

  // The index of the entry nearest to x (dim values); *error (if given) its squared distance.
  uint32_t operator()(const double* x, double* error = nullptr) const;

  // out[q] = (*this)(xs + q * dim, errors + q) for m queries, every coordinate finite; errors (if
  // given) m values. Small tables four entries at a time, in one AVX2 register where the processor
  // has it (the same errors and ties as above).
  void Many(const double* xs, size_t m, uint32_t* out, double* errors = nullptr) const;

 private:
  size_t k_, dim_;
  static constexpr size_t kBruteMax = 64;

  uint32_t Search(const double* x, double* error) const;

  size_t kp_ = 0;
  std::vector<double> rows_;     // entries in sorted order
  std::vector<uint32_t> index_;  // their original indices
  // Small tables: entries transposed (t * kp_ + j, kp_ = k rounded up to 4), in index order; the
  // padding repeats entry 0 (so it ties with it and loses the tie: its index is >= k).
  std::vector<double> columns_;
};

}  // namespace palettize
