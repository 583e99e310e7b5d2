#include "eval/spatial.h"

namespace palettize::eval {

Status SpatialInts(OpContext& ctx, const std::string& param, size_t dims, int64_t dflt,
                   std::vector<int64_t>* out) {
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr(param, std::vector<int64_t>(dims, dflt), out));
  if (out->size() != dims)
    return ctx.Fail(param + ": " + std::to_string(out->size()) + " values for " + std::to_string(dims) +
                    " spatial dimensions");
  for (int64_t v : *out)
    if (v < 1) return ctx.Fail(param + ": " + std::to_string(v) + ", expected values >= 1");
  return Status::OK();
}

Status PoolingWindow(OpContext& ctx, const std::vector<int64_t>& in, const std::vector<int64_t>& kernel,
                     const std::vector<int64_t>& strides, const std::string& pad_type,
                     const std::vector<int64_t>& pad, bool ceil_mode, SpatialWindow* out) {
  const size_t dims = in.size();
  out->before.assign(dims, 0);
  out->after.assign(dims, 0);
  out->out.assign(dims, 0);
  if (pad_type == "custom") {
    if (pad.size() != 2 * dims)
      return ctx.Fail("pad: " + std::to_string(pad.size()) + " values, expected " + std::to_string(2 * dims));
    for (size_t d = 0; d < dims; ++d) {
      if (pad[2 * d] < 0 || pad[2 * d + 1] < 0) return ctx.Fail("pad: negative padding");
      out->before[d] = pad[2 * d];
      out->after[d] = pad[2 * d + 1];
    }
  } else if (pad_type == "same" || pad_type == "same_lower") {
    for (size_t d = 0; d < dims; ++d) {
      const int64_t s = strides[d];
      const int64_t total = std::max<int64_t>(0, s * ((in[d] + s - 1) / s) - in[d] + kernel[d] - s);
      out->before[d] = pad_type == "same" ? total / 2 : (total + 1) / 2;
      out->after[d] = total - out->before[d];
    }
  } else if (pad_type != "valid") {
    return ctx.Fail("pad_type: '" + pad_type + "', expected valid, same, same_lower or custom");
  }
  for (size_t d = 0; d < dims; ++d) {
    const int64_t padded = in[d] + out->before[d] + out->after[d], total_pad = out->before[d] + out->after[d];
    int64_t o = 0;
    if (!ceil_mode) {
      o = padded >= kernel[d] ? (padded - kernel[d]) / strides[d] + 1 : 0;
    } else {
      o = padded >= kernel[d] ? (padded - kernel[d] + strides[d] - 1) / strides[d] + 1 : 0;
      // A last window starting past the input and the left padding's half is dropped.
      if (o > 0 && total_pad > 0 && 2 * (o - 1) * strides[d] >= 2 * in[d] + total_pad) --o;
    }
    if (o <= 0)
      return ctx.Fail("spatial dimension " + std::to_string(d) + ": input " + std::to_string(in[d]) +
                      " with kernel " + std::to_string(kernel[d]) + " gives no output");
    out->out[d] = o;
  }
  return Status::OK();
}

}  // namespace palettize::eval
