// Elementwise ops with NumPy broadcasting: arithmetic (add ... mod), comparisons, logical ops,
// and unary math (exp ... cos). Floats compute in float, integers in int64.
#include <cmath>

#include "MIL.pb.h"
#include "eval/broadcast.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

namespace MT = CoreML::Specification::MILSpec;

using IntFn = int64_t (*)(int64_t, int64_t);

// o[k] = f(a[k * step_a], b[k * step_b]) for k < n: the innermost axis of a broadcast (a step is
// 0 or 1). F is the op's own function object, so the loop inlines and vectorises.
template <typename F>
void FloatRow(const float* a, size_t step_a, const float* b, size_t step_b, float* o, size_t n, F f) {
  if (step_a == 1 && step_b == 1) {
    for (size_t k = 0; k < n; ++k) o[k] = f(a[k], b[k]);
  } else if (step_a == 1) {
    const float bv = b[0];
    for (size_t k = 0; k < n; ++k) o[k] = f(a[k], bv);
  } else if (step_b == 1) {
    const float av = a[0];
    for (size_t k = 0; k < n; ++k) o[k] = f(av, b[k]);
  } else {
    const float v = f(a[0], b[0]);
    for (size_t k = 0; k < n; ++k) o[k] = v;
  }
}

// x, y broadcast; out = f(x, y) computed in float when either input is float, in int64 otherwise,
// stored in the declared dtype.
template <typename F>
Status Binary(OpContext& ctx, F ff, IntFn fi) {
  const Tensor *x = nullptr, *y = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("y", &y));
  if (x->is_string() || y->is_string()) return ctx.Fail("x, y: string tensors");
  std::vector<int64_t> shape;
  if (!BroadcastShape(x->shape(), y->shape(), &shape))
    return ctx.Fail("x " + ShapeText(x->shape()) + " and y " + ShapeText(y->shape()) + " do not broadcast");
  Tensor out(OutDType(ctx, 0, x->dtype()), shape);
  const auto sa = BroadcastStrides(x->shape(), shape), sb = BroadcastStrides(y->shape(), shape);
  const bool as_float = x->is_float() || y->is_float() || fi == nullptr;
  if (as_float && x->is_float() && y->is_float() && out.is_float()) {
    // Rows along the last axis, the outer axes by the generic walk (once per row).
    const float *a = x->f().data(), *b = y->f().data();
    float* o = out.f().data();
    if (shape.empty() || out.size() == 0) {
      if (out.size() == 1) o[0] = ff(a[0], b[0]);
    } else {
      const size_t n = size_t(shape.back());
      const size_t step_a = sa.back(), step_b = sb.back();
      const std::vector<int64_t> outer(shape.begin(), shape.end() - 1);
      const std::vector<size_t> oa(sa.begin(), sa.end() - 1), ob(sb.begin(), sb.end() - 1);
      ForEachBroadcast(outer, oa, ob, [&](size_t r, size_t ia, size_t ib) {
        FloatRow(a + ia, step_a, b + ib, step_b, o + r * n, n, ff);
      });
    }
  } else if (as_float) {
    ForEachBroadcast(shape, sa, sb, [&](size_t k, size_t ia, size_t ib) {
      out.set(k, ff(float(x->at(ia)), float(y->at(ib))));
    });
  } else {
    ForEachBroadcast(shape, sa, sb,
                     [&](size_t k, size_t ia, size_t ib) { out.set(k, double(fi(x->i()[ia], y->i()[ib]))); });
  }
  return ctx.SetOutput(0, std::move(out));
}

// Integer arithmetic wraps (two's complement, as Core ML's int32 does), where int64's would be
// undefined on overflow.
int64_t AddInt(int64_t a, int64_t b) { return int64_t(uint64_t(a) + uint64_t(b)); }
int64_t SubInt(int64_t a, int64_t b) { return int64_t(uint64_t(a) - uint64_t(b)); }
int64_t MulInt(int64_t a, int64_t b) { return int64_t(uint64_t(a) * uint64_t(b)); }

int64_t FloorDivInt(int64_t a, int64_t b) {
  if (b == 0) return 0;
  if (b == -1) return SubInt(0, a);  // INT64_MIN / -1 overflows
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t ModInt(int64_t a, int64_t b) { return b == 0 ? 0 : SubInt(a, MulInt(FloorDivInt(a, b), b)); }

int64_t PowInt(int64_t a, int64_t b) {
  if (b < 0) return a == 1 ? 1 : 0;
  int64_t r = 1;
  for (int64_t k = 0; k < b && k < 64; ++k) r = int64_t(uint64_t(r) * uint64_t(a));
  return r;
}

template <typename F>
void AddBinary(OpRegistry& r, const char* type, F ff, IntFn fi) {
  r.Add(type, [ff, fi](OpContext& ctx) { return Binary(ctx, ff, fi); });
}

// Unary float ops: x -> f(x). Some take an epsilon (log, rsqrt, inverse), read as `eps`.
using UnaryFn = float (*)(float, float);

Status Unary(OpContext& ctx, UnaryFn f, double eps_default) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  double eps = eps_default;
  if (ctx.Has("epsilon")) PALETTIZE_RETURN_IF_ERROR(ctx.Float("epsilon", &eps));
  Tensor out(OutDType(ctx, 0, x->dtype()), x->shape());
  if (x->is_float() && out.is_float()) {
    for (size_t k = 0; k < x->size(); ++k) out.f()[k] = f(x->f()[k], float(eps));
  } else {
    for (size_t k = 0; k < x->size(); ++k) out.set(k, f(float(x->at(k)), float(eps)));
  }
  return ctx.SetOutput(0, std::move(out));
}

void AddUnary(OpRegistry& r, const char* type, UnaryFn f, double eps_default = 0) {
  r.Add(type, [f, eps_default](OpContext& ctx) { return Unary(ctx, f, eps_default); });
}

// Comparisons and logical ops: bool output.
Status Compare(OpContext& ctx, bool (*f)(double, double)) {
  const Tensor *x = nullptr, *y = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("y", &y));
  std::vector<int64_t> shape;
  if (!BroadcastShape(x->shape(), y->shape(), &shape))
    return ctx.Fail("x " + ShapeText(x->shape()) + " and y " + ShapeText(y->shape()) + " do not broadcast");
  Tensor out(MT::BOOL, shape);
  ForEachBroadcast(shape, BroadcastStrides(x->shape(), shape), BroadcastStrides(y->shape(), shape),
                   [&](size_t k, size_t ia, size_t ib) { out.i()[k] = f(x->at(ia), y->at(ib)); });
  return ctx.SetOutput(0, std::move(out));
}

void AddCompare(OpRegistry& r, const char* type, bool (*f)(double, double)) {
  r.Add(type, [f](OpContext& ctx) { return Compare(ctx, f); });
}

Status LogicalNot(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  Tensor out(MT::BOOL, x->shape());
  for (size_t k = 0; k < x->size(); ++k) out.i()[k] = x->at(k) == 0;
  return ctx.SetOutput(0, std::move(out));
}

float Sign(float v, float) { return float((v > 0) - (v < 0)); }

}  // namespace

void RegisterElementwiseOps(OpRegistry& r) {
  AddBinary(
      r, "add", [](float a, float b) { return a + b; }, AddInt);
  AddBinary(
      r, "sub", [](float a, float b) { return a - b; }, SubInt);
  AddBinary(
      r, "mul", [](float a, float b) { return a * b; }, MulInt);
  AddBinary(
      r, "real_div", [](float a, float b) { return a / b; }, nullptr);
  AddBinary(
      r, "pow", [](float a, float b) { return std::pow(a, b); }, PowInt);
  AddBinary(
      r, "maximum", [](float a, float b) { return std::fmax(a, b); },
      [](int64_t a, int64_t b) { return a > b ? a : b; });
  AddBinary(
      r, "minimum", [](float a, float b) { return std::fmin(a, b); },
      [](int64_t a, int64_t b) { return a < b ? a : b; });
  AddBinary(
      r, "floor_div", [](float a, float b) { return std::floor(a / b); }, FloorDivInt);
  AddBinary(
      r, "mod", [](float a, float b) { return a - std::floor(a / b) * b; }, ModInt);

  AddCompare(r, "equal", [](double a, double b) { return a == b; });
  AddCompare(r, "not_equal", [](double a, double b) { return a != b; });
  AddCompare(r, "less", [](double a, double b) { return a < b; });
  AddCompare(r, "less_equal", [](double a, double b) { return a <= b; });
  AddCompare(r, "greater", [](double a, double b) { return a > b; });
  AddCompare(r, "greater_equal", [](double a, double b) { return a >= b; });
  AddCompare(r, "logical_and", [](double a, double b) { return a != 0 && b != 0; });
  AddCompare(r, "logical_or", [](double a, double b) { return a != 0 || b != 0; });
  AddCompare(r, "logical_xor", [](double a, double b) { return (a != 0) != (b != 0); });
  r.Add("logical_not", LogicalNot);

  AddUnary(r, "exp", [](float v, float) { return std::exp(v); });
  AddUnary(r, "exp2", [](float v, float) { return std::exp2(v); });
  AddUnary(r, "log", [](float v, float e) { return std::log(v + e); });
  AddUnary(r, "sqrt", [](float v, float) { return std::sqrt(v); });
  AddUnary(
      r, "rsqrt", [](float v, float e) { return 1.0f / std::sqrt(v + e); }, 1e-12);
  AddUnary(
      r, "inverse", [](float v, float e) { return 1.0f / (v + e); }, 1e-4);
  AddUnary(r, "square", [](float v, float) { return v * v; });
  AddUnary(r, "abs", [](float v, float) { return std::fabs(v); });
  AddUnary(r, "floor", [](float v, float) { return std::floor(v); });
  AddUnary(r, "ceil", [](float v, float) { return std::ceil(v); });
  AddUnary(r, "round", [](float v, float) { return std::nearbyint(v); });  // half to even, as numpy
  AddUnary(r, "sign", Sign);
  AddUnary(r, "sin", [](float v, float) { return std::sin(v); });
  AddUnary(r, "cos", [](float v, float) { return std::cos(v); });
  AddUnary(r, "tan", [](float v, float) { return std::tan(v); });
  AddUnary(r, "erf", [](float v, float) { return std::erf(v); });
}

}  // namespace palettize::eval
