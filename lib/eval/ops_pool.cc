// max_pool, avg_pool and l2_pool over 1 to 3 spatial dimensions: x [N, C, *D].
#include <algorithm>
#include <cmath>

#include "eval/kernel_util.h"
#include "eval/op_registry.h"
#include "eval/spatial.h"

namespace palettize::eval {

namespace {

enum class PoolKind { kMax, kAvg, kL2 };

// Spatial sizes padded to three (leading 1s), so one loop nest serves 1-D, 2-D and 3-D.
std::vector<int64_t> To3(const std::vector<int64_t>& v, int64_t fill) {
  std::vector<int64_t> out(3 - v.size(), fill);
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

Status Pool(OpContext& ctx, PoolKind kind) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  if (x->rank() < 3 || x->rank() > 5)
    return ctx.Fail("x: " + DescribeTensor(*x) + ", expected [N, C, *D] with 1 to 3 spatial dimensions");
  const size_t dims = size_t(x->rank() - 2);
  std::vector<int64_t> kernel, strides, pad;
  if (!ctx.Has("kernel_sizes")) return ctx.Fail("missing parameter 'kernel_sizes'");
  PALETTIZE_RETURN_IF_ERROR(SpatialInts(ctx, "kernel_sizes", dims, 1, &kernel));
  PALETTIZE_RETURN_IF_ERROR(SpatialInts(ctx, "strides", dims, 1, &strides));
  std::string pad_type;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("pad_type", "valid", &pad_type));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("pad", std::vector<int64_t>(2 * dims, 0), &pad));
  bool ceil_mode = false, exclude_pad = false;
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("ceil_mode", false, &ceil_mode));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("exclude_padding_from_average", false, &exclude_pad));
  const std::vector<int64_t> in(x->shape().begin() + 2, x->shape().end());
  SpatialWindow w;
  PALETTIZE_RETURN_IF_ERROR(PoolingWindow(ctx, in, kernel, strides, pad_type, pad, ceil_mode, &w));

  std::vector<int64_t> shape = {x->dim(0), x->dim(1)};
  shape.insert(shape.end(), w.out.begin(), w.out.end());
  Tensor y(OutDType(ctx, 0, x->dtype()), shape);
  const auto I = To3(in, 1), O = To3(w.out, 1), K = To3(kernel, 1), S = To3(strides, 1), B = To3(w.before, 0),
             A = To3(w.after, 0);
  const size_t in_plane = size_t(I[0] * I[1] * I[2]), out_plane = size_t(O[0] * O[1] * O[2]);
  const size_t planes = size_t(x->dim(0) * x->dim(1));
  for (size_t p = 0; p < planes; ++p) {
    const float* src = x->f().data() + p * in_plane;
    float* dst = y.f().data() + p * out_plane;
    for (int64_t od = 0; od < O[0]; ++od)
      for (int64_t oh = 0; oh < O[1]; ++oh)
        for (int64_t ow = 0; ow < O[2]; ++ow) {
          const int64_t s0[3] = {od * S[0] - B[0], oh * S[1] - B[1], ow * S[2] - B[2]};
          int64_t lo[3], hi[3];
          int64_t padded_count = 1;  // window elements inside input + padding (ceil_mode may overhang)
          for (int k = 0; k < 3; ++k) {
            lo[k] = std::max<int64_t>(s0[k], 0);
            hi[k] = std::min<int64_t>(s0[k] + K[k], I[k]);
            padded_count *= std::min<int64_t>(s0[k] + K[k], I[k] + A[k]) - s0[k];
          }
          float acc = kind == PoolKind::kMax ? -INFINITY : 0.0f;
          int64_t count = 0;
          for (int64_t d = lo[0]; d < hi[0]; ++d)
            for (int64_t h = lo[1]; h < hi[1]; ++h)
              for (int64_t c = lo[2]; c < hi[2]; ++c) {
                const float v = src[size_t((d * I[1] + h) * I[2] + c)];
                if (kind == PoolKind::kMax)
                  acc = std::max(acc, v);
                else if (kind == PoolKind::kAvg)
                  acc += v;
                else
                  acc += v * v;
                ++count;
              }
          float out = acc;
          if (kind == PoolKind::kAvg) {
            const int64_t div = exclude_pad ? count : padded_count;
            out = div > 0 ? acc / float(div) : 0.0f;
          } else if (kind == PoolKind::kL2) {
            out = std::sqrt(acc);
          }
          dst[size_t((od * O[1] + oh) * O[2] + ow)] = out;
        }
  }
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterPoolOps(OpRegistry& r) {
  r.Add("max_pool", [](OpContext& ctx) { return Pool(ctx, PoolKind::kMax); });
  r.Add("avg_pool", [](OpContext& ctx) { return Pool(ctx, PoolKind::kAvg); });
  r.Add("l2_pool", [](OpContext& ctx) { return Pool(ctx, PoolKind::kL2); });
}

}  // namespace palettize::eval
