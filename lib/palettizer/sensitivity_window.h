// A weight's sensitivities read a window at a time, for the general path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sensitivity/sensitivity.h"

namespace palettize {

// A weight's sensitivities read on demand, a window of them at a time, so that the general path
// holds no more than a window beside its own buffers: at(off) is element off's, for offsets that
// mostly rise. A window starts at the first element not in the last one and spans `size`
// elements (or to the end).
class SensitivityWindow {
 public:
  SensitivityWindow(const ElementWeights* w, uint64_t elements, uint64_t size)
      : w_(w), elements_(elements), size_(std::max<uint64_t>(size, 1)) {}
  double at(uint64_t off) {
    if (off < begin_ || off >= end_) {
      begin_ = off;
      end_ = std::min(elements_, off + size_);
      buf_.resize(end_ - begin_);
      w_->Read(begin_, end_ - begin_, buf_.data());
      w_->Release(begin_, end_ - begin_);
    }
    return buf_[off - begin_];
  }

 private:
  const ElementWeights* w_;
  uint64_t elements_, size_;
  uint64_t begin_ = 0, end_ = 0;
  std::vector<double> buf_;
};

}  // namespace palettize
