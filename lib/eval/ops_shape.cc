// Ops that rearrange values without arithmetic: reshape, transpose, expand_dims, squeeze, tile,
// pad, shape, fill, range_1d. (Slicing, joining and gathering: ops_slice.cc.)
#include <algorithm>
#include <cmath>

#include "MIL.pb.h"
#include "eval/broadcast.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

namespace MT = CoreML::Specification::MILSpec;

// shape: -1 takes the remaining elements (once), 0 keeps x's dimension at that axis.
Status Reshape(OpContext& ctx) {
  const Tensor* x = nullptr;
  std::vector<int64_t> shape;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("shape", &shape));
  int infer = -1;
  size_t known = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 0 && k < x->shape().size()) shape[k] = x->dim(int(k));
    if (shape[k] == -1 && infer < 0) {
      infer = int(k);
    } else if (shape[k] < 0) {
      return ctx.Fail("shape: " + ShapeText(shape) + " has a negative dimension");
    } else {
      known *= size_t(shape[k]);
    }
  }
  if (infer >= 0 && known != 0) shape[size_t(infer)] = int64_t(x->size() / known);
  if (ElementCount(shape) != x->size())
    return ctx.Fail("shape " + ShapeText(shape) + " does not hold the " + std::to_string(x->size()) +
                    " elements of x " + ShapeText(x->shape()));
  Tensor y = *x;
  y.Reshape(shape);
  return ctx.SetOutput(0, std::move(y));
}

Status Transpose(OpContext& ctx) {
  const Tensor* x = nullptr;
  std::vector<int64_t> perm;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("perm", &perm));
  const int rank = x->rank();
  std::vector<bool> seen(size_t(rank), false);
  if (int(perm.size()) != rank)
    return ctx.Fail("perm: " + ShapeText(perm) + " for rank " + std::to_string(rank));
  std::vector<int64_t> shape(static_cast<size_t>(rank));
  const std::vector<size_t> in_strides = Strides(x->shape());
  std::vector<size_t> strides(static_cast<size_t>(rank));
  for (int k = 0; k < rank; ++k) {
    const int a = NormalizeAxis(perm[size_t(k)], rank);
    if (a < 0 || seen[size_t(a)]) return ctx.Fail("perm: " + ShapeText(perm) + " is not a permutation");
    seen[size_t(a)] = true;
    shape[size_t(k)] = x->dim(a);
    strides[size_t(k)] = in_strides[size_t(a)];
  }
  Tensor y(x->dtype(), shape);
  ForEachBroadcast(shape, strides, strides, [&](size_t o, size_t i, size_t) { y.CopyElement(o, *x, i); });
  return ctx.SetOutput(0, std::move(y));
}

Status ExpandDims(OpContext& ctx) {
  const Tensor* x = nullptr;
  std::vector<int64_t> axes;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("axes", &axes));
  const int rank = x->rank() + int(axes.size());
  std::vector<bool> unit(size_t(rank), false);
  for (int64_t a : axes) {
    const int n = NormalizeAxis(a, rank);
    if (n < 0 || unit[size_t(n)])
      return ctx.Fail("axes: " + ShapeText(axes) + " for output rank " + std::to_string(rank));
    unit[size_t(n)] = true;
  }
  std::vector<int64_t> shape;
  for (int k = 0, j = 0; k < rank; ++k) shape.push_back(unit[size_t(k)] ? 1 : x->dim(j++));
  Tensor y = *x;
  y.Reshape(shape);
  return ctx.SetOutput(0, std::move(y));
}

Status Squeeze(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  std::vector<bool> drop(size_t(x->rank()), false);
  if (ctx.Has("axes")) {
    std::vector<int64_t> axes;
    PALETTIZE_RETURN_IF_ERROR(ctx.Ints("axes", &axes));
    for (int64_t a : axes) {
      const int n = NormalizeAxis(a, x->rank());
      if (n < 0 || x->dim(n) != 1)
        return ctx.Fail("axes: " + ShapeText(axes) + " for x " + ShapeText(x->shape()));
      drop[size_t(n)] = true;
    }
  } else {
    for (int k = 0; k < x->rank(); ++k) drop[size_t(k)] = x->dim(k) == 1;
  }
  std::vector<int64_t> shape;
  for (int k = 0; k < x->rank(); ++k)
    if (!drop[size_t(k)]) shape.push_back(x->dim(k));
  Tensor y = *x;
  y.Reshape(shape);
  return ctx.SetOutput(0, std::move(y));
}

Status Tile(OpContext& ctx) {
  const Tensor* x = nullptr;
  std::vector<int64_t> reps;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("reps", &reps));
  if (int(reps.size()) != x->rank())
    return ctx.Fail("reps: " + ShapeText(reps) + " for rank " + std::to_string(x->rank()));
  std::vector<int64_t> shape = x->shape();
  for (size_t k = 0; k < shape.size(); ++k) {
    if (reps[k] < 0) return ctx.Fail("reps: " + ShapeText(reps) + " has a negative count");
    shape[k] *= reps[k];
  }
  Tensor y(x->dtype(), shape);
  const std::vector<size_t> st = Strides(x->shape());
  ForEachIndex(shape, [&](const std::vector<int64_t>& idx, size_t o) {
    size_t i = 0;
    for (size_t k = 0; k < idx.size(); ++k) i += size_t(idx[k] % x->shape()[k]) * st[k];
    y.CopyElement(o, *x, i);
  });
  return ctx.SetOutput(0, std::move(y));
}

// pad: `pad` holds (before, after) pairs for the last len(pad)/2 axes; mode constant, reflect
// (mirror without the edge) or replicate (repeat the edge).
Status Pad(OpContext& ctx) {
  const Tensor* x = nullptr;
  std::vector<int64_t> pad;
  std::string mode;
  double value = 0;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("pad", &pad));
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("mode", "constant", &mode));
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("constant_val", 0, &value));
  if (mode != "constant" && mode != "reflect" && mode != "replicate")
    return ctx.Fail("mode: '" + mode + "', expected constant, reflect or replicate");
  const size_t rank = size_t(x->rank());
  if (pad.size() % 2 != 0 || pad.size() / 2 > rank)
    return ctx.Fail("pad: " + ShapeText(pad) + " for rank " + std::to_string(rank));
  std::vector<int64_t> before(rank, 0), shape = x->shape();
  const size_t first = rank - pad.size() / 2;
  for (size_t k = first; k < rank; ++k) {
    const int64_t b = pad[2 * (k - first)], a = pad[2 * (k - first) + 1];
    if (b < 0 || a < 0) return ctx.Fail("pad: " + ShapeText(pad) + " has a negative amount");
    if (mode == "reflect" && (b >= x->shape()[k] || a >= x->shape()[k]))
      return ctx.Fail("pad: reflect needs amounts below the dimension " + std::to_string(x->shape()[k]));
    before[k] = b;
    shape[k] += b + a;
  }
  Tensor y(x->dtype(), shape);
  const std::vector<size_t> st = Strides(x->shape());
  ForEachIndex(shape, [&](const std::vector<int64_t>& idx, size_t o) {
    size_t i = 0;
    for (size_t k = 0; k < rank; ++k) {
      int64_t p = idx[k] - before[k];
      const int64_t n = x->shape()[k];
      if (p < 0 || p >= n) {
        if (mode == "constant") {
          y.set(o, value);
          return;
        }
        if (mode == "reflect")
          p = p < 0 ? -p : 2 * (n - 1) - p;
        else
          p = p < 0 ? 0 : n - 1;
      }
      i += size_t(p) * st[k];
    }
    y.CopyElement(o, *x, i);
  });
  return ctx.SetOutput(0, std::move(y));
}

Status Shape(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  Tensor y(OutDType(ctx, 0, MT::INT32), {int64_t(x->rank())});
  for (int k = 0; k < x->rank(); ++k) y.i()[size_t(k)] = x->dim(k);
  return ctx.SetOutput(0, std::move(y));
}

Status Fill(OpContext& ctx) {
  std::vector<int64_t> shape;
  double value = 0;
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("shape", &shape));
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("value", 0, &value));
  for (int64_t d : shape)
    if (d < 0) return ctx.Fail("shape: " + ShapeText(shape) + " has a negative dimension");
  Tensor y(DeclaredDType(ctx, 0, MT::FLOAT32), shape);
  for (size_t k = 0; k < y.size(); ++k) y.set(k, value);
  return ctx.SetOutput(0, std::move(y));
}

// range_1d(end, start, step): start, start + step, ... before end.
Status Range1d(OpContext& ctx) {
  double start = 0, end = 0, step = 1;
  PALETTIZE_RETURN_IF_ERROR(ctx.Float("start", &start));
  PALETTIZE_RETURN_IF_ERROR(ctx.Float("end", &end));
  PALETTIZE_RETURN_IF_ERROR(ctx.Float("step", &step));
  if (step == 0) return ctx.Fail("step: 0");
  const double count = std::ceil((end - start) / step);
  if (!(count < 1e9)) return ctx.Fail("more than 1e9 values");
  const int64_t n = count > 0 ? int64_t(count) : 0;
  const Tensor* s = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("start", &s));
  Tensor y(OutDType(ctx, 0, s->dtype()), {n});
  for (int64_t k = 0; k < n; ++k) y.set(size_t(k), start + double(k) * step);
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterShapeOps(OpRegistry& r) {
  r.Add("reshape", Reshape);
  r.Add("transpose", Transpose);
  r.Add("expand_dims", ExpandDims);
  r.Add("squeeze", Squeeze);
  r.Add("tile", Tile);
  r.Add("pad", Pad);
  r.Add("shape", Shape);
  r.Add("fill", Fill);
  r.Add("range_1d", Range1d);
}

}  // namespace palettize::eval
