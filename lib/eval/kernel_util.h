// Small helpers shared by the op families (ops_*.cc).
#pragma once

#include <string>

#include "eval/op_context.h"

namespace palettize::eval {

// The declared dtype of output `index`, or `fallback` when the program does not declare a tensor
// or declares one stored unlike `fallback` (float, integer, string: tensor.h). Kernels write the
// storage of the dtype they compute in; a damaged declaration then fails in SetOutput ("computed
// float32, declared ...") instead of leaving the kernel an empty buffer to write.
inline int OutDType(const OpContext& ctx, int index, int fallback) {
  const DeclaredType& d = ctx.output_type(index);
  const auto storage = [](int t) { return IsFloatDType(t) ? 0 : IsIntDType(t) ? 1 : 2; };
  return d.tensor && storage(d.dtype) == storage(fallback) ? d.dtype : fallback;
}

// The declared dtype of output `index`, whatever its storage, or `fallback` when the program does
// not declare a tensor: for kernels that write only through Tensor::set, which every dtype takes
// (fill, topk's indices).
inline int DeclaredDType(const OpContext& ctx, int index, int fallback) {
  const DeclaredType& d = ctx.output_type(index);
  return d.tensor ? d.dtype : fallback;
}

// Reads tensor parameter `param` and requires a float dtype.
inline Status FloatInput(OpContext& ctx, const std::string& param, const Tensor** out) {
  PALETTIZE_RETURN_IF_ERROR(ctx.Input(param, out));
  if (!(*out)->is_float())
    return ctx.Fail(param + ": " + DescribeTensor(**out) + ", expected a float tensor");
  return Status::OK();
}

// Reads axis parameter `param` (default `dflt`) for a tensor of `rank`, normalised to [0, rank).
Status AxisParam(OpContext& ctx, const std::string& param, int64_t dflt, int rank, int* out);

}  // namespace palettize::eval
