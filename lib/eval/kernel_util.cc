#include "eval/kernel_util.h"

#include "eval/broadcast.h"

namespace palettize::eval {

Status AxisParam(OpContext& ctx, const std::string& param, int64_t dflt, int rank, int* out) {
  int64_t axis = 0;
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr(param, dflt, &axis));
  *out = NormalizeAxis(axis, rank);
  if (*out < 0)
    return ctx.Fail(param + ": " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return Status::OK();
}

}  // namespace palettize::eval
