// Each element's index by the run of equal nearest entries its value falls in (GroupIndices for
// float32 and float64): the distinct values' indices form runs, a few per table entry, and an
// element takes the index of the last run starting at or below its value. A branch-free binary
// search over the run starts padded to a power of two with +Inf: log2 of their number steps of
// compare-and-add on a few cache lines, where a branching search mispredicted every other step
// (21% of a float32 package's CPU on 27M elements). F is the elements' type (float or double);
// the run starts are distinct values of those elements, so comparing in F is exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace palettize {

template <typename F>
class RunLookup {
 public:
  // `values` ascending, `nearest` the index of each (any order).
  RunLookup(const std::vector<double>& values, const std::vector<uint8_t>& nearest)
      : RunLookup(values.data(), values.size(), nearest.data()) {}
  // The same on n values of any type that converts to F (doubles of F values, or F values).
  template <typename V>
  RunLookup(const V* values, size_t n, const uint8_t* nearest) {
    for (size_t v = 0; v < n; ++v)
      if (v == 0 || nearest[v] != nearest[v - 1])
        first_.push_back(F(values[v])), index_.push_back(nearest[v]);
    size_t size = 1;
    while (size < first_.size()) size *= 2;
    first_.resize(size, std::numeric_limits<F>::infinity());
    index_.resize(size, 0);
    half_ = size / 2;
  }

  // The index of finite x's run: that of the last run start <= x, the first run's below them all
  // (-0 and +0 alike: they compare equal).
  uint8_t operator()(F x) const {
    size_t r = 0;
    for (size_t step = half_; step > 0; step /= 2) r += first_[r + step] <= x ? step : 0;
    return index_[r];
  }

  // The run starts and their indices, padded (with +Inf starts) to runs() entries, a power of two.
  size_t runs() const { return first_.size(); }
  const F* starts() const { return first_.data(); }
  const uint8_t* indices() const { return index_.data(); }

 private:
  std::vector<F> first_;  // run starts; first_[0] is never compared
  std::vector<uint8_t> index_;
  size_t half_ = 0;
};

}  // namespace palettize
