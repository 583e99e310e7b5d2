// conv, 1-D and 2-D (a 1-D conv runs as 2-D with height 1): strides, dilations, groups, pad_type
// valid / same / same_lower / custom. im2col per image and group, then one GEMM (eval/gemm.h).
#include <algorithm>

#include "eval/gemm.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

struct Geometry {
  int64_t in = 0, k = 0, stride = 1, dil = 1, before = 0, out = 0;
};

// Output size and padding before, per pad_type (coremltools iOS15 conv, _conv_output_shape).
Status Plan(OpContext& ctx, const std::string& pad_type, int64_t pad_before, int64_t pad_after, Geometry* g) {
  const int64_t eff = g->dil * (g->k - 1) + 1;
  if (g->stride <= 0 || g->dil <= 0) return ctx.Fail("strides and dilations must be positive");
  if (pad_type == "valid") {
    g->before = 0;
    g->out = g->in >= eff ? (g->in - eff) / g->stride + 1 : 0;
  } else if (pad_type == "same" || pad_type == "same_lower") {
    g->out = (g->in + g->stride - 1) / g->stride;
    const int64_t total = std::max<int64_t>((g->out - 1) * g->stride + eff - g->in, 0);
    g->before = pad_type == "same" ? total / 2 : (total + 1) / 2;
  } else if (pad_type == "custom") {
    if (pad_before < 0 || pad_after < 0) return ctx.Fail("pad: negative");
    g->before = pad_before;
    const int64_t padded = g->in + pad_before + pad_after;
    g->out = padded >= eff ? (padded - eff) / g->stride + 1 : 0;
  } else {
    return ctx.Fail("pad_type: '" + pad_type + "', expected valid, same, same_lower or custom");
  }
  return Status::OK();
}

Status Conv(OpContext& ctx) {
  const Tensor *x = nullptr, *w = nullptr, *bias = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "weight", &w));
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("bias", &bias));
  const int spatial = x->rank() - 2;
  if ((spatial != 1 && spatial != 2) || w->rank() != x->rank())
    return ctx.Fail("x " + ShapeText(x->shape()) + " and weight " + ShapeText(w->shape()) +
                    ": 1-D and 2-D convolutions are supported");
  int64_t groups = 1;
  std::string pad_type;
  std::vector<int64_t> strides, dilations, pad;
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr("groups", 1, &groups));
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("pad_type", "valid", &pad_type));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("strides", std::vector<int64_t>(size_t(spatial), 1), &strides));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("dilations", std::vector<int64_t>(size_t(spatial), 1), &dilations));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("pad", std::vector<int64_t>(2 * size_t(spatial), 0), &pad));
  if (strides.size() != size_t(spatial) || dilations.size() != size_t(spatial) ||
      pad.size() != 2 * size_t(spatial))
    return ctx.Fail("strides, dilations and pad need one value (pad: two) per spatial axis");
  const int64_t n = x->dim(0), c_in = x->dim(1), c_out = w->dim(0);
  if (groups <= 0 || c_in % groups != 0 || c_out % groups != 0 || w->dim(1) != c_in / groups)
    return ctx.Fail("weight " + ShapeText(w->shape()) + " with groups " + std::to_string(groups) + " for x " +
                    ShapeText(x->shape()));
  if (bias != nullptr && (!bias->is_float() || bias->size() != size_t(c_out)))
    return ctx.Fail("bias: " + DescribeTensor(*bias) + ", expected " + std::to_string(c_out) + " floats");
  // Height (1 for 1-D) and width.
  Geometry gh, gw;
  gh.in = spatial == 2 ? x->dim(2) : 1;
  gh.k = spatial == 2 ? w->dim(2) : 1;
  gw.in = x->dim(x->rank() - 1);
  gw.k = w->dim(w->rank() - 1);
  if (spatial == 2) {
    gh.stride = strides[0], gh.dil = dilations[0];
    PALETTIZE_RETURN_IF_ERROR(Plan(ctx, pad_type, pad[0], pad[1], &gh));
  } else {
    gh.out = 1;
  }
  gw.stride = strides.back(), gw.dil = dilations.back();
  PALETTIZE_RETURN_IF_ERROR(Plan(ctx, pad_type, pad[pad.size() - 2], pad.back(), &gw));
  std::vector<int64_t> shape = {n, c_out};
  if (spatial == 2) shape.push_back(gh.out);
  shape.push_back(gw.out);
  Tensor y(OutDType(ctx, 0, x->dtype()), shape);
  const int64_t cg = c_in / groups, og = c_out / groups, kk = cg * gh.k * gw.k, pix = gh.out * gw.out;
  std::vector<float> cols(size_t(kk * pix));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < groups; ++g) {
      // cols[(c, i, j), (oh, ow)] = x[b, g*cg + c, oh*s - before + i*d, ow*s - before + j*d] or 0.
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t i = 0; i < gh.k; ++i)
          for (int64_t j = 0; j < gw.k; ++j) {
            float* row = cols.data() + ((c * gh.k + i) * gw.k + j) * pix;
            const float* plane = x->f().data() + ((b * c_in) + g * cg + c) * gh.in * gw.in;
            for (int64_t oh = 0; oh < gh.out; ++oh) {
              const int64_t ih = oh * gh.stride - gh.before + i * gh.dil;
              for (int64_t ow = 0; ow < gw.out; ++ow) {
                const int64_t iw = ow * gw.stride - gw.before + j * gw.dil;
                const bool inside = ih >= 0 && ih < gh.in && iw >= 0 && iw < gw.in;
                row[oh * gw.out + ow] = inside ? plane[ih * gw.in + iw] : 0.0f;
              }
            }
          }
      float* out = y.f().data() + (b * c_out + g * og) * pix;
      Gemm(w->f().data() + g * og * kk, cols.data(), out, og, pix, kk, false, false);
      if (bias != nullptr)
        for (int64_t o = 0; o < og; ++o)
          for (int64_t p = 0; p < pix; ++p) out[o * pix + p] += bias->f()[size_t(g * og + o)];
    }
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterConvOps(OpRegistry& r) { r.Add("conv", Conv); }

}  // namespace palettize::eval
