// Activations (relu ... softplus, softplus_parametric, clip) and softmax. Float inputs; computed in float.
#include <algorithm>
#include <cmath>

#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

// y = f(x, alpha, beta), alpha and beta read from the op's parameters of those names when it has
// them (leaky_relu's alpha, clip's alpha and beta, ...), else the defaults given.
using ActFn = float (*)(float x, float alpha, float beta);

Status Activation(OpContext& ctx, ActFn f, double alpha_default, double beta_default) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  double alpha = alpha_default, beta = beta_default;
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("alpha", alpha_default, &alpha));
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("beta", beta_default, &beta));
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  const float a = float(alpha), b = float(beta);
  const float* in = x->f().data();
  float* out = y.f().data();
  for (size_t k = 0; k < x->size(); ++k) out[k] = f(in[k], a, b);
  return ctx.SetOutput(0, std::move(y));
}

void AddActivation(OpRegistry& r, const char* type, ActFn f, double alpha = 0, double beta = 0) {
  r.Add(type, [f, alpha, beta](OpContext& ctx) { return Activation(ctx, f, alpha, beta); });
}

float Sigmoid(float v) { return 1.0f / (1.0f + std::exp(-v)); }

// gelu's three modes (coremltools iOS15 activation.py): EXACT 0.5 x (1 + erf(x / sqrt 2));
// TANH_APPROXIMATION 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); SIGMOID_APPROXIMATION
// x sigmoid(1.702 x).
Status Gelu(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  std::string mode;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("mode", "EXACT", &mode));
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  const float* in = x->f().data();
  float* out = y.f().data();
  const size_t n = x->size();
  if (mode == "EXACT") {
    for (size_t k = 0; k < n; ++k) out[k] = 0.5f * in[k] * (1.0f + std::erf(in[k] * float(M_SQRT1_2)));
  } else if (mode == "TANH_APPROXIMATION") {
    const float c = std::sqrt(float(2.0 / M_PI));
    for (size_t k = 0; k < n; ++k)
      out[k] = 0.5f * in[k] * (1.0f + std::tanh(c * (in[k] + 0.044715f * in[k] * in[k] * in[k])));
  } else if (mode == "SIGMOID_APPROXIMATION") {
    for (size_t k = 0; k < n; ++k) out[k] = in[k] * Sigmoid(1.702f * in[k]);
  } else {
    return ctx.Fail("mode: '" + mode + "', expected EXACT, TANH_APPROXIMATION or SIGMOID_APPROXIMATION");
  }
  return ctx.SetOutput(0, std::move(y));
}

// softmax along `axis` (default -1), max-subtracted, sums in float in index order.
Status Softmax(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  int axis = 0;
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", -1, x->rank(), &axis));
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  size_t outer = 1, inner = 1;
  for (int k = 0; k < axis; ++k) outer *= size_t(x->dim(k));
  for (int k = axis + 1; k < x->rank(); ++k) inner *= size_t(x->dim(k));
  const size_t len = size_t(x->dim(axis));
  for (size_t o = 0; o < outer; ++o)
    for (size_t i = 0; i < inner; ++i) {
      const float* in = x->f().data() + o * len * inner + i;
      float* out = y.f().data() + o * len * inner + i;
      float m = -INFINITY, sum = 0;
      for (size_t k = 0; k < len; ++k) m = std::max(m, in[k * inner]);
      for (size_t k = 0; k < len; ++k) sum += out[k * inner] = std::exp(in[k * inner] - m);
      for (size_t k = 0; k < len; ++k) out[k * inner] /= sum;
    }
  return ctx.SetOutput(0, std::move(y));
}

// softplus_parametric: alpha[c] * log(1 + e^(beta[c] x)) for x [B, C, *D] (rank >= 3), alpha and
// beta of length C (coremltools iOS15 activation.py), without overflow for large beta x.
Status SoftplusParametric(OpContext& ctx) {
  const Tensor *x = nullptr, *alpha = nullptr, *beta = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "alpha", &alpha));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "beta", &beta));
  if (x->rank() < 3) return ctx.Fail("x: " + DescribeTensor(*x) + ", expected rank >= 3");
  const int64_t channels = x->dim(1);
  for (const Tensor* p : {alpha, beta})
    if (p->rank() != 1 || p->dim(0) != channels)
      return ctx.Fail((p == alpha ? "alpha: " : "beta: ") + DescribeTensor(*p) + ", expected [" +
                      std::to_string(channels) + "] (x's dimension 1)");
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  const size_t batch = size_t(x->dim(0));
  size_t inner = 1;
  for (int k = 2; k < x->rank(); ++k) inner *= size_t(x->dim(k));
  for (size_t b = 0; b < batch; ++b)
    for (size_t c = 0; c < size_t(channels); ++c) {
      const float a = alpha->f()[c], s = beta->f()[c];
      const size_t base = (b * size_t(channels) + c) * inner;
      for (size_t k = 0; k < inner; ++k) {
        const float v = s * x->f()[base + k];
        y.f()[base + k] = a * (std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v))));
      }
    }
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterActivationOps(OpRegistry& r) {
  AddActivation(r, "relu", [](float v, float, float) { return v > 0 ? v : 0.0f; });
  AddActivation(r, "relu6", [](float v, float, float) { return std::min(std::max(v, 0.0f), 6.0f); });
  AddActivation(
      r, "leaky_relu", [](float v, float a, float) { return v >= 0 ? v : a * v; }, 0.01);
  AddActivation(
      r, "elu", [](float v, float a, float) { return v > 0 ? v : a * (std::exp(v) - 1.0f); }, 1.0);
  AddActivation(
      r, "thresholded_relu", [](float v, float a, float) { return v > a ? v : 0.0f; }, 1.0);
  AddActivation(r, "sigmoid", [](float v, float, float) { return Sigmoid(v); });
  AddActivation(
      r, "sigmoid_hard", [](float v, float a, float b) { return std::min(std::max(a * v + b, 0.0f), 1.0f); },
      0.2, 0.5);
  AddActivation(r, "silu", [](float v, float, float) { return v * Sigmoid(v); });
  AddActivation(r, "tanh", [](float v, float, float) { return std::tanh(v); });
  AddActivation(r, "softsign", [](float v, float, float) { return v / (1.0f + std::fabs(v)); });
  // log(1 + e^x) without overflow for large x.
  AddActivation(r, "softplus", [](float v, float, float) {
    return std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v)));
  });
  AddActivation(r, "clip", [](float v, float a, float b) { return std::min(std::max(v, a), b); });
  r.Add("gelu", Gelu);
  r.Add("softmax", Softmax);
  r.Add("softplus_parametric", SoftplusParametric);
}

}  // namespace palettize::eval
