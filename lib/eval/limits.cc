#include "eval/limits.h"

namespace palettize::eval {

namespace {

EvalLimits g_limits;

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

}  // namespace

const EvalLimits& CurrentEvalLimits() { return g_limits; }

void SetEvalLimits(const EvalLimits& limits) { g_limits = limits; }

void CheckTensorShape(const std::vector<int64_t>& shape) {
  const uint64_t limit = g_limits.max_tensor_elements;
  uint64_t n = 1;
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0) throw TensorLimitError("a tensor of shape " + ShapeString(shape) + ": negative dimension");
    zero = zero || d == 0;
  }
  if (zero) return;
  for (int64_t d : shape) {
    // n * d > limit, without computing a product that could overflow.
    if (uint64_t(d) > limit / n)
      throw TensorLimitError("a tensor of shape " + ShapeString(shape) + ": more than " +
                             std::to_string(limit) + " elements (the evaluator's limit)");
    n *= uint64_t(d);
  }
}

}  // namespace palettize::eval
