// Spatial windows of pooling and transposed convolution: pad types and output sizes as
// coremltools defines them (mil/ops/defs/_utils.py, aggregated_pad and
// spatial_dimensions_out_shape).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/op_context.h"

namespace palettize::eval {

// Per spatial dimension: the padding before and after it and the output size.
struct SpatialWindow {
  std::vector<int64_t> before, after, out;
};

// The window of an op over `in` (spatial sizes) with effective kernel sizes `kernel` (dilation
// applied), `strides`, `pad_type` ("valid", "same", "same_lower", "custom") and `pad` (custom:
// before/after pairs). ceil_mode as pooling's: the last window may start in the padding's right
// half. Fails (one line) on an unknown pad type, a wrong length or a window that yields no output.
Status PoolingWindow(OpContext& ctx, const std::vector<int64_t>& in, const std::vector<int64_t>& kernel,
                     const std::vector<int64_t>& strides, const std::string& pad_type,
                     const std::vector<int64_t>& pad, bool ceil_mode, SpatialWindow* out);

// Reads `param` (a list of one positive integer per spatial dimension) or gives `dflt` for each.
Status SpatialInts(OpContext& ctx, const std::string& param, size_t dims, int64_t dflt,
                   std::vector<int64_t>* out);

}  // namespace palettize::eval
