// The evaluator's bounds on memory and time (RELIABILITY.md, "palettize eval"): a crafted program
// or input fails with a Status naming the op instead of allocating without end or looping
// forever. Process-wide; the fuzz harness lowers them so that each input runs in bounded time.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace palettize::eval {

struct EvalLimits {
  // Elements of one tensor: 2^30 (4 GiB of float32, 8 GiB of int64 storage). Larger than any
  // weight or activation of the models palettize targets, small enough to refuse a shape read
  // from a damaged file before it is allocated.
  uint64_t max_tensor_elements = uint64_t(1) << 30;
  // Iterations of one while_loop.
  int64_t max_loop_iterations = int64_t(1) << 24;
};

// The limits in force. SetEvalLimits is for tests and the fuzz harness: call it while no
// evaluation runs.
const EvalLimits& CurrentEvalLimits();
void SetEvalLimits(const EvalLimits& limits);

// Thrown by Tensor's constructor for a shape with a negative dimension or more elements than
// max_tensor_elements, before anything is allocated; the interpreter turns it into the op's
// Status.
class TensorLimitError : public std::length_error {
 public:
  using std::length_error::length_error;
};

// Throws TensorLimitError unless every dimension of `shape` is >= 0 and their product (computed
// without overflow) is at most max_tensor_elements.
void CheckTensorShape(const std::vector<int64_t>& shape);

}  // namespace palettize::eval
