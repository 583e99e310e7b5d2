// cast, identity, select, classify.
#include <cmath>

#include "MIL.pb.h"
#include "eval/broadcast.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

namespace MT = CoreML::Specification::MILSpec;

// The output dtype is the declared one (the `dtype` parameter names it too). Float to integer
// truncates toward zero, as NumPy's astype; float16 outputs are rounded by SetOutput.
Status Cast(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  std::string dtype;
  PALETTIZE_RETURN_IF_ERROR(ctx.String("dtype", &dtype));
  if (!ctx.output_type(0).tensor) return ctx.Fail("output 0: not a tensor");
  Tensor y(ctx.output_type(0).dtype, x->shape());
  if (x->is_string() || y.is_string())
    return ctx.Fail("dtype '" + dtype + "': string casts are not supported");
  if (x->is_float() && y.is_float()) {
    y.f() = x->f();
  } else {
    for (size_t k = 0; k < x->size(); ++k) y.set(k, x->is_float() ? std::trunc(x->at(k)) : x->at(k));
  }
  return ctx.SetOutput(0, std::move(y));
}

Status Identity(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  return ctx.SetOutput(0, *x);
}

// select(cond, a, b): a where cond, else b; all three broadcast.
Status Select(OpContext& ctx) {
  const Tensor *c = nullptr, *a = nullptr, *b = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("cond", &c));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("a", &a));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("b", &b));
  std::vector<int64_t> ab, shape;
  if (!BroadcastShape(a->shape(), b->shape(), &ab) || !BroadcastShape(ab, c->shape(), &shape))
    return ctx.Fail("cond " + ShapeText(c->shape()) + ", a " + ShapeText(a->shape()) + " and b " +
                    ShapeText(b->shape()) + " do not broadcast");
  Tensor y(OutDType(ctx, 0, a->dtype()), shape);
  const auto sc = BroadcastStrides(c->shape(), shape), sa = BroadcastStrides(a->shape(), shape),
             sb = BroadcastStrides(b->shape(), shape);
  ForEachBroadcast(shape, sa, sb, [&](size_t o, size_t, size_t ib) { y.set(o, b->at(ib)); });
  ForEachBroadcast(shape, sc, sa, [&](size_t o, size_t ic, size_t ia) {
    if (c->at(ic) != 0) y.set(o, a->at(ia));
  });
  return ctx.SetOutput(0, std::move(y));
}

// classify(probabilities, classes): output 0 the class of the largest probability (the first on
// ties), output 1 the probabilities. MIL declares output 1 a dictionary class -> probability;
// the evaluator keeps it as a float32 tensor [C] of the probabilities in `classes` order.
Status Classify(OpContext& ctx) {
  const Tensor *p = nullptr, *classes = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "probabilities", &p));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("classes", &classes));
  if (p->size() != classes->size() || p->size() == 0)
    return ctx.Fail("probabilities " + ShapeText(p->shape()) + " for " + std::to_string(classes->size()) +
                    " classes");
  size_t best = 0;
  for (size_t k = 1; k < p->size(); ++k)
    if (p->f()[k] > p->f()[best]) best = k;
  const DeclaredType& label_type = ctx.output_type(0);
  std::vector<int64_t> label_shape = label_type.tensor ? label_type.dims : std::vector<int64_t>{};
  for (int64_t& d : label_shape) d = d < 0 ? 1 : d;
  if (ElementCount(label_shape) != 1) return ctx.Fail("output 0: declared " + ShapeText(label_shape));
  Tensor label(classes->dtype(), label_shape);
  if (classes->is_string())
    label.s()[0] = classes->s()[best];
  else
    label.set(0, classes->at(best));
  PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(0, std::move(label)));
  Tensor probs(MT::FLOAT32, {int64_t(p->size())});
  probs.f() = p->f();
  return ctx.SetOutput(1, std::move(probs));
}

}  // namespace

void RegisterMiscOps(OpRegistry& r) {
  r.Add("cast", Cast);
  r.Add("identity", Identity);
  r.Add("select", Select);
  r.Add("classify", Classify);
}

}  // namespace palettize::eval
