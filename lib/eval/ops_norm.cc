// batch_norm, instance_norm and l2_norm (layer_norm lives with the reductions). Statistics are
// summed in double in index order, so they do not depend on the thread count.
#include <cmath>

#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

// A per-channel vector parameter of C floats; absent -> `fill` for every channel.
Status ChannelParam(OpContext& ctx, const std::string& param, int64_t channels, bool required, float fill,
                    std::vector<float>* out) {
  const Tensor* t = nullptr;
  PALETTIZE_RETURN_IF_ERROR(required ? ctx.Input(param, &t) : ctx.OptionalInput(param, &t));
  if (t == nullptr) {
    out->assign(size_t(channels), fill);
    return Status::OK();
  }
  if (!t->is_float() || t->size() != size_t(channels))
    return ctx.Fail(param + ": " + DescribeTensor(*t) + ", expected " + std::to_string(channels) + " floats");
  *out = t->f();
  return Status::OK();
}

// gamma (default 1), beta (default 0), one per channel, and epsilon (default 1e-5): what batch_norm
// and instance_norm share.
Status ReadAffine(OpContext& ctx, int64_t channels, std::vector<float>* gamma, std::vector<float>* beta,
                  double* eps) {
  PALETTIZE_RETURN_IF_ERROR(ChannelParam(ctx, "gamma", channels, false, 1, gamma));
  PALETTIZE_RETURN_IF_ERROR(ChannelParam(ctx, "beta", channels, false, 0, beta));
  return ctx.FloatOr("epsilon", 1e-5, eps);
}

// Elements of one (n, c) plane of x [N, C, *D].
size_t PlaneSize(const Tensor& x) {
  size_t inner = 1;
  for (int k = 2; k < x.rank(); ++k) inner *= size_t(x.dim(k));
  return inner;
}

// y = (x - mean) / sqrt(variance + epsilon) * gamma + beta along axis 1 of x [N, C, *D].
Status BatchNorm(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  if (x->rank() < 2) return ctx.Fail("x: " + DescribeTensor(*x) + ", expected [N, C, *D]");
  const int64_t c = x->dim(1);
  std::vector<float> mean, var, gamma, beta;
  PALETTIZE_RETURN_IF_ERROR(ChannelParam(ctx, "mean", c, true, 0, &mean));
  PALETTIZE_RETURN_IF_ERROR(ChannelParam(ctx, "variance", c, true, 0, &var));
  double eps = 1e-5;
  PALETTIZE_RETURN_IF_ERROR(ReadAffine(ctx, c, &gamma, &beta, &eps));
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  const size_t inner = PlaneSize(*x);
  for (int64_t n = 0; n < x->dim(0); ++n)
    for (int64_t ch = 0; ch < c; ++ch) {
      const size_t ci = size_t(ch);
      const float scale = gamma[ci] / std::sqrt(var[ci] + float(eps));
      const float shift = beta[ci] - mean[ci] * scale;
      const size_t base = size_t(n * c + ch) * inner;
      for (size_t k = 0; k < inner; ++k) y.f()[base + k] = x->f()[base + k] * scale + shift;
    }
  return ctx.SetOutput(0, std::move(y));
}

// Each (n, c) plane of x [N, C, *D] normalised by its own mean and (biased) variance.
Status InstanceNorm(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  if (x->rank() < 3) return ctx.Fail("x: " + DescribeTensor(*x) + ", expected [N, C, *D] with rank >= 3");
  const int64_t c = x->dim(1);
  std::vector<float> gamma, beta;
  double eps = 1e-5;
  PALETTIZE_RETURN_IF_ERROR(ReadAffine(ctx, c, &gamma, &beta, &eps));
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  const size_t inner = PlaneSize(*x);
  for (size_t p = 0; p < size_t(x->dim(0) * c); ++p) {
    const float* in = x->f().data() + p * inner;
    float* out = y.f().data() + p * inner;
    double sum = 0, sq = 0;
    for (size_t k = 0; k < inner; ++k) sum += in[k];
    const double mean = sum / double(inner);
    for (size_t k = 0; k < inner; ++k) sq += (in[k] - mean) * (in[k] - mean);
    const double inv = 1.0 / std::sqrt(sq / double(inner) + eps);
    const size_t ch = p % size_t(c);
    for (size_t k = 0; k < inner; ++k) out[k] = float((in[k] - mean) * inv) * gamma[ch] + beta[ch];
  }
  return ctx.SetOutput(0, std::move(y));
}

// x / sqrt(sum(x^2) + epsilon) over the last three axes; the leading axes are batch.
Status L2Norm(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  if (x->rank() < 3) return ctx.Fail("x: " + DescribeTensor(*x) + ", expected rank >= 3");
  double eps = 1e-6;
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("epsilon", 1e-6, &eps));
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  const size_t inner = size_t(x->dim(x->rank() - 1) * x->dim(x->rank() - 2) * x->dim(x->rank() - 3));
  const size_t batches = inner == 0 ? 0 : x->size() / inner;
  for (size_t b = 0; b < batches; ++b) {
    const float* in = x->f().data() + b * inner;
    double sq = 0;
    for (size_t k = 0; k < inner; ++k) sq += double(in[k]) * in[k];
    const double inv = 1.0 / std::sqrt(sq + eps);
    for (size_t k = 0; k < inner; ++k) y.f()[b * inner + k] = float(in[k] * inv);
  }
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterNormOps(OpRegistry& r) {
  r.Add("batch_norm", BatchNorm);
  r.Add("instance_norm", InstanceNorm);
  r.Add("l2_norm", L2Norm);
}

}  // namespace palettize::eval
