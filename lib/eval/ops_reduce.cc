// Reductions (reduce_*, argmax, argmin) and layer_norm. Sums accumulate in double, in index
// order, so results do not depend on threads.
#include <algorithm>
#include <cmath>

#include "MIL.pb.h"
#include "eval/broadcast.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

namespace MT = CoreML::Specification::MILSpec;

enum class Kind { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kSumSquare, kLogSumExp, kArgMax, kArgMin };

// For each element of x, the index of the output element it reduces into.
Status ReducedShape(OpContext& ctx, const Tensor& x, bool arg, std::vector<int64_t>* keep_shape,
                    std::vector<int64_t>* out_shape) {
  std::vector<bool> reduce(size_t(x.rank()), false);
  if (arg) {
    int axis = 0;
    PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", -1, x.rank(), &axis));
    reduce[size_t(axis)] = true;
  } else if (ctx.Has("axes")) {
    std::vector<int64_t> axes;
    PALETTIZE_RETURN_IF_ERROR(ctx.Ints("axes", &axes));
    for (int64_t a : axes) {
      const int n = NormalizeAxis(a, x.rank());
      if (n < 0) return ctx.Fail("axes: " + ShapeText(axes) + " for rank " + std::to_string(x.rank()));
      reduce[size_t(n)] = true;
    }
  } else {
    reduce.assign(reduce.size(), true);
  }
  bool keep = false;
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("keep_dims", false, &keep));
  keep_shape->clear();
  out_shape->clear();
  for (int k = 0; k < x.rank(); ++k) {
    keep_shape->push_back(reduce[size_t(k)] ? 1 : x.dim(k));
    if (!reduce[size_t(k)] || keep) out_shape->push_back(reduce[size_t(k)] ? 1 : x.dim(k));
  }
  return Status::OK();
}

Status Reduce(OpContext& ctx, Kind kind) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  const bool arg = kind == Kind::kArgMax || kind == Kind::kArgMin;
  std::vector<int64_t> keep_shape, out_shape;
  PALETTIZE_RETURN_IF_ERROR(ReducedShape(ctx, *x, arg, &keep_shape, &out_shape));
  const size_t n_out = ElementCount(keep_shape);
  if (n_out == 0 || x->size() == 0) return ctx.Fail("x " + ShapeText(x->shape()) + ": nothing to reduce");
  const size_t count = x->size() / n_out;
  const bool is_max = kind == Kind::kMax || kind == Kind::kArgMax;
  const bool is_min = kind == Kind::kMin || kind == Kind::kArgMin;
  std::vector<double> acc(n_out, kind == Kind::kProd ? 1.0 : is_max ? -INFINITY : is_min ? INFINITY : 0.0);
  std::vector<int64_t> best(n_out, -1);
  std::vector<double> peak(n_out, -INFINITY);
  if (kind == Kind::kLogSumExp) {
    const auto zero = std::vector<size_t>(keep_shape.size(), 0);
    ForEachBroadcast(x->shape(), BroadcastStrides(keep_shape, x->shape()), zero,
                     [&](size_t i, size_t o, size_t) { peak[o] = std::max(peak[o], x->at(i)); });
  }
  const std::vector<size_t> zero(x->shape().size(), 0);
  // The position along the reduced axis of element i, for argmax/argmin: counted per output.
  std::vector<int64_t> seen(n_out, 0);
  ForEachBroadcast(x->shape(), BroadcastStrides(keep_shape, x->shape()), zero, [&](size_t i, size_t o, size_t) {
    const double v = x->at(i);
    switch (kind) {
      case Kind::kSum:
      case Kind::kMean: acc[o] += v; break;
      case Kind::kProd: acc[o] *= v; break;
      case Kind::kL1: acc[o] += std::fabs(v); break;
      case Kind::kL2:
      case Kind::kSumSquare: acc[o] += v * v; break;
      case Kind::kLogSumExp: acc[o] += std::exp(v - peak[o]); break;
      case Kind::kMax:
      case Kind::kArgMax:
        if (v > acc[o] || best[o] < 0) acc[o] = v, best[o] = seen[o];
        break;
      case Kind::kMin:
      case Kind::kArgMin:
        if (v < acc[o] || best[o] < 0) acc[o] = v, best[o] = seen[o];
        break;
    }
    ++seen[o];
  });
  Tensor y(OutDType(ctx, 0, arg ? int(MT::INT32) : x->dtype()), out_shape);
  for (size_t o = 0; o < n_out; ++o) {
    double v = acc[o];
    if (kind == Kind::kMean) v /= double(count);
    if (kind == Kind::kL2) v = std::sqrt(v);
    if (kind == Kind::kLogSumExp) v = std::log(v) + peak[o];
    if (arg) v = double(best[o]);
    y.set(o, v);
  }
  return ctx.SetOutput(0, std::move(y));
}

// layer_norm(x, axes, gamma, beta, epsilon): (x - mean) / sqrt(var + eps) * gamma + beta over
// `axes`, which must be the last axes of x (what converters emit).
Status LayerNorm(OpContext& ctx) {
  const Tensor *x = nullptr, *gamma = nullptr, *beta = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("gamma", &gamma));
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("beta", &beta));
  double eps = 1e-5;
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("epsilon", 1e-5, &eps));
  std::vector<int64_t> axes;
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("axes", {}, &axes));
  std::vector<bool> norm(size_t(x->rank()), false);
  for (int64_t a : axes) {
    const int n = NormalizeAxis(a, x->rank());
    if (n < 0) return ctx.Fail("axes: " + ShapeText(axes) + " for rank " + std::to_string(x->rank()));
    norm[size_t(n)] = true;
  }
  size_t first = norm.size();
  while (first > 0 && norm[first - 1]) --first;
  for (size_t k = 0; k < first; ++k)
    if (norm[k]) return ctx.Fail("axes: " + ShapeText(axes) + ": only the last axes are supported yet");
  size_t inner = 1;
  for (size_t k = first; k < norm.size(); ++k) inner *= size_t(x->shape()[k]);
  for (const Tensor* t : {gamma, beta})
    if (t != nullptr && (!t->is_float() || t->size() != inner))
      return ctx.Fail("gamma/beta: " + DescribeTensor(*t) + " for " + std::to_string(inner) + " normalised values");
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  const size_t outer = inner ? x->size() / inner : 0;
  for (size_t o = 0; o < outer; ++o) {
    const float* in = x->f().data() + o * inner;
    float* out = y.f().data() + o * inner;
    double mean = 0, var = 0;
    for (size_t k = 0; k < inner; ++k) mean += in[k];
    mean /= double(inner);
    for (size_t k = 0; k < inner; ++k) var += (in[k] - mean) * (in[k] - mean);
    var /= double(inner);
    const double inv = 1.0 / std::sqrt(var + eps);
    for (size_t k = 0; k < inner; ++k) {
      double v = (in[k] - mean) * inv;
      if (gamma) v *= gamma->f()[k];
      if (beta) v += beta->f()[k];
      out[k] = float(v);
    }
  }
  return ctx.SetOutput(0, std::move(y));
}

void AddReduce(OpRegistry& r, const char* type, Kind kind) {
  r.Add(type, [kind](OpContext& ctx) { return Reduce(ctx, kind); });
}

}  // namespace

void RegisterReduceOps(OpRegistry& r) {
  AddReduce(r, "reduce_sum", Kind::kSum);
  AddReduce(r, "reduce_mean", Kind::kMean);
  AddReduce(r, "reduce_max", Kind::kMax);
  AddReduce(r, "reduce_min", Kind::kMin);
  AddReduce(r, "reduce_prod", Kind::kProd);
  AddReduce(r, "reduce_l1_norm", Kind::kL1);
  AddReduce(r, "reduce_l2_norm", Kind::kL2);
  AddReduce(r, "reduce_sum_square", Kind::kSumSquare);
  AddReduce(r, "reduce_log_sum_exp", Kind::kLogSumExp);
  AddReduce(r, "reduce_argmax", Kind::kArgMax);
  AddReduce(r, "reduce_argmin", Kind::kArgMin);
  r.Add("layer_norm", LayerNorm);
}

}  // namespace palettize::eval
