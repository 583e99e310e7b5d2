// conv_transpose over 1 to 3 spatial dimensions: x [N, C_in, *D_in], weight
// [C_in, C_out / groups, *K]. Per batch and group one GEMM gives every (output channel, kernel
// tap, input position) product, and col2im adds each into its output position; each output
// channel is summed by one thread in a fixed order.
#include <tbb/parallel_for.h>

#include "eval/gemm.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"
#include "eval/spatial.h"

namespace palettize::eval {

namespace {

std::vector<int64_t> To3(const std::vector<int64_t>& v, int64_t fill) {
  std::vector<int64_t> out(3 - v.size(), fill);
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

Status ConvTranspose(OpContext& ctx) {
  const Tensor *x = nullptr, *w = nullptr, *bias = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "weight", &w));
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("bias", &bias));
  if (x->rank() < 3 || x->rank() > 5 || w->rank() != x->rank())
    return ctx.Fail(
        "x " + ShapeText(x->shape()) + " and weight " + ShapeText(w->shape()) +
        ": expected x [N, C_in, *D] and weight [C_in, C_out/groups, *K], 1 to 3 spatial dimensions");
  const size_t dims = size_t(x->rank() - 2);
  int64_t groups = 1;
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr("groups", 1, &groups));
  const int64_t n = x->dim(0), cin = x->dim(1);
  if (groups < 1 || cin % groups != 0 || w->dim(0) != cin)
    return ctx.Fail("groups " + std::to_string(groups) + " with x " + ShapeText(x->shape()) + " and weight " +
                    ShapeText(w->shape()) + ": weight's first axis must be C_in, divisible by groups");
  const int64_t cout_g = w->dim(1), cout = cout_g * groups, cin_g = cin / groups;
  if (bias != nullptr && (!bias->is_float() || bias->size() != size_t(cout)))
    return ctx.Fail("bias: " + DescribeTensor(*bias) + ", expected " + std::to_string(cout) + " floats");
  std::vector<int64_t> strides, dilations, pad, output_shape;
  PALETTIZE_RETURN_IF_ERROR(SpatialInts(ctx, "strides", dims, 1, &strides));
  PALETTIZE_RETURN_IF_ERROR(SpatialInts(ctx, "dilations", dims, 1, &dilations));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("pad", std::vector<int64_t>(2 * dims, 0), &pad));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("output_shape", {}, &output_shape));
  std::string pad_type;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("pad_type", "valid", &pad_type));
  if (pad.size() != 2 * dims)
    return ctx.Fail("pad: " + std::to_string(pad.size()) + " values, expected " + std::to_string(2 * dims));

  // The full (uncropped) output, then the crop before each axis and the output size.
  std::vector<int64_t> in(dims), k(dims), full(dims), crop(dims), out(dims);
  for (size_t d = 0; d < dims; ++d) {
    in[d] = x->dim(int(d) + 2);
    k[d] = w->dim(int(d) + 2);
    full[d] = (in[d] - 1) * strides[d] + (k[d] - 1) * dilations[d] + 1;
    if (pad_type == "custom") {
      crop[d] = pad[2 * d];
      out[d] = full[d] - pad[2 * d] - pad[2 * d + 1];
    } else if (pad_type == "valid") {
      out[d] = full[d];
    } else if (pad_type == "same") {
      out[d] = in[d] * strides[d];
      crop[d] = std::max<int64_t>(0, full[d] - out[d]) / 2;
    } else {
      return ctx.Fail("pad_type: '" + pad_type + "', expected valid, same or custom");
    }
  }
  if (!output_shape.empty()) {
    if (output_shape.size() != dims + 2 && output_shape.size() != dims)
      return ctx.Fail("output_shape: " + ShapeText(output_shape) + ", expected " + std::to_string(dims + 2) +
                      " values");
    for (size_t d = 0; d < dims; ++d) out[d] = output_shape[output_shape.size() - dims + d];
  }
  for (size_t d = 0; d < dims; ++d)
    if (out[d] < 1) return ctx.Fail("spatial dimension " + std::to_string(d) + " gives no output");

  std::vector<int64_t> shape = {n, cout};
  shape.insert(shape.end(), out.begin(), out.end());
  Tensor y(OutDType(ctx, 0, x->dtype()), shape);
  const auto I = To3(in, 1), K = To3(k, 1), O = To3(out, 1), S = To3(strides, 1), D = To3(dilations, 1),
             C = To3(crop, 0);
  const int64_t lin = I[0] * I[1] * I[2], ktaps = K[0] * K[1] * K[2], lout = O[0] * O[1] * O[2];
  std::vector<float> cols(size_t(cout_g * ktaps * lin));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t g = 0; g < groups; ++g) {
      // cols [C_out_g * K, L_in] = W_g^T [C_out_g * K, C_in_g] x_g [C_in_g, L_in].
      const float* xg = x->f().data() + size_t((b * cin + g * cin_g) * lin);
      const float* wg = w->f().data() + size_t(g * cin_g * cout_g * ktaps);
      Gemm(wg, xg, cols.data(), cout_g * ktaps, lin, cin_g, true, false);
      tbb::parallel_for(int64_t(0), cout_g, [&](int64_t oc) {
        const int64_t och = g * cout_g + oc;
        float* dst = y.f().data() + size_t((b * cout + och) * lout);
        const float bv = bias != nullptr ? bias->f()[size_t(och)] : 0.0f;
        for (int64_t q = 0; q < lout; ++q) dst[q] = bv;
        for (int64_t t = 0; t < ktaps; ++t) {
          const int64_t kd = t / (K[1] * K[2]), kh = (t / K[2]) % K[1], kw = t % K[2];
          const float* src = cols.data() + size_t((oc * ktaps + t) * lin);
          for (int64_t id = 0; id < I[0]; ++id) {
            const int64_t od = id * S[0] + kd * D[0] - C[0];
            if (od < 0 || od >= O[0]) continue;
            for (int64_t ih = 0; ih < I[1]; ++ih) {
              const int64_t oh = ih * S[1] + kh * D[1] - C[1];
              if (oh < 0 || oh >= O[1]) continue;
              for (int64_t iw = 0; iw < I[2]; ++iw) {
                const int64_t ow = iw * S[2] + kw * D[2] - C[2];
                if (ow < 0 || ow >= O[2]) continue;
                dst[(od * O[1] + oh) * O[2] + ow] += src[(id * I[1] + ih) * I[2] + iw];
              }
            }
          }
        }
      });
    }
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterConvTransposeOps(OpRegistry& r) { r.Add("conv_transpose", ConvTranspose); }

}  // namespace palettize::eval
