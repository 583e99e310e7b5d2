// Joining, splitting, slicing and gathering: concat, stack, split, slice_by_index,
// slice_by_size, gather, gather_along_axis.
#include <algorithm>

#include "eval/broadcast.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

// A tensor seen as [outer, len, inner] around `axis`.
struct AxisView {
  size_t outer = 1, len = 1, inner = 1;
  AxisView(const std::vector<int64_t>& shape, int axis) {
    for (int k = 0; k < axis; ++k) outer *= size_t(shape[size_t(k)]);
    len = size_t(shape[size_t(axis)]);
    for (size_t k = size_t(axis) + 1; k < shape.size(); ++k) inner *= size_t(shape[k]);
  }
};

// values joined along `axis`; with `stack`, along a new axis.
Status Join(OpContext& ctx, bool stack) {
  std::vector<const Tensor*> xs;
  PALETTIZE_RETURN_IF_ERROR(ctx.Inputs("values", &xs));
  if (xs.empty()) return ctx.Fail("values: empty");
  int64_t axis_param = 0;
  PALETTIZE_RETURN_IF_ERROR(ctx.Int("axis", &axis_param));
  std::vector<int64_t> base = xs[0]->shape();
  const int out_rank = int(base.size()) + (stack ? 1 : 0);
  const int axis = NormalizeAxis(axis_param, out_rank);
  if (axis < 0) return ctx.Fail("axis: " + std::to_string(axis_param) + " for rank " + std::to_string(out_rank));
  if (stack) base.insert(base.begin() + axis, 1);
  int64_t total = 0;
  for (const Tensor* x : xs) {
    std::vector<int64_t> s = x->shape();
    if (stack) s.insert(s.begin() + std::min<int>(axis, int(s.size())), 1);
    bool ok = s.size() == base.size() && x->is_float() == xs[0]->is_float();
    for (size_t k = 0; ok && k < s.size(); ++k) ok = int(k) == axis || s[k] == base[k];
    if (!ok) return ctx.Fail("values: " + DescribeTensor(*x) + " does not match " + DescribeTensor(*xs[0]));
    total += s[size_t(axis)];
  }
  std::vector<int64_t> shape = base;
  shape[size_t(axis)] = total;
  Tensor y(OutDType(ctx, 0, xs[0]->dtype()), shape);
  const AxisView out(shape, axis);
  size_t offset = 0;
  for (const Tensor* x : xs) {
    const size_t len = stack ? 1 : size_t(x->dim(axis));
    for (size_t o = 0; o < out.outer; ++o)
      for (size_t j = 0; j < len * out.inner; ++j)
        y.CopyElement((o * out.len + offset) * out.inner + j, *x, o * len * out.inner + j);
    offset += len;
  }
  return ctx.SetOutput(0, std::move(y));
}

// split(x, num_splits | split_sizes, axis): one output per part.
Status Split(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  int axis = 0;
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", 0, x->rank(), &axis));
  const int64_t len = x->dim(axis);
  std::vector<int64_t> sizes;
  if (ctx.Has("split_sizes")) {
    PALETTIZE_RETURN_IF_ERROR(ctx.Ints("split_sizes", &sizes));
  } else {
    int64_t n = 0;
    PALETTIZE_RETURN_IF_ERROR(ctx.Int("num_splits", &n));
    if (n <= 0) return ctx.Fail("num_splits: " + std::to_string(n));
    sizes.assign(size_t(n), (len + n - 1) / n);
    sizes.back() = len - (n - 1) * sizes[0];
  }
  int64_t sum = 0;
  for (int64_t s : sizes) sum += s < 0 ? len + 1 : s;
  if (sum != len || int(sizes.size()) != ctx.num_outputs())
    return ctx.Fail("parts " + ShapeText(sizes) + " of an axis of " + std::to_string(len) + " into " +
                    std::to_string(ctx.num_outputs()) + " outputs");
  const AxisView in(x->shape(), axis);
  size_t offset = 0;
  for (size_t p = 0; p < sizes.size(); ++p) {
    std::vector<int64_t> shape = x->shape();
    shape[size_t(axis)] = sizes[p];
    Tensor y(x->dtype(), shape);
    const size_t n = size_t(sizes[p]) * in.inner;
    for (size_t o = 0; o < in.outer; ++o)
      for (size_t j = 0; j < n; ++j) y.CopyElement(o * n + j, *x, (o * in.len + offset) * in.inner + j);
    offset += size_t(sizes[p]);
    PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(int(p), std::move(y)));
  }
  return Status::OK();
}

// Copies x[begin + idx * stride] for every idx of `shape` (axes of x, before squeezing).
Tensor Strided(const Tensor& x, const std::vector<int64_t>& begin, const std::vector<int64_t>& stride,
               const std::vector<int64_t>& shape, int dtype) {
  Tensor y(dtype, shape);
  const std::vector<size_t> st = Strides(x.shape());
  ForEachIndex(shape, [&](const std::vector<int64_t>& idx, size_t o) {
    size_t i = 0;
    for (size_t k = 0; k < idx.size(); ++k) i += size_t(begin[k] + idx[k] * stride[k]) * st[k];
    y.CopyElement(o, x, i);
  });
  return y;
}

Status SliceByIndex(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  const size_t rank = size_t(x->rank());
  std::vector<int64_t> begin, end, stride, bmask, emask, smask;
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("begin", &begin));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("end", &end));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("stride", std::vector<int64_t>(rank, 1), &stride));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("begin_mask", std::vector<int64_t>(rank, 0), &bmask));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("end_mask", std::vector<int64_t>(rank, 0), &emask));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntsOr("squeeze_mask", std::vector<int64_t>(rank, 0), &smask));
  for (const auto* v : {&begin, &end, &stride, &bmask, &emask, &smask})
    if (v->size() != rank) return ctx.Fail("begin, end, stride and masks need " + std::to_string(rank) + " values");
  std::vector<int64_t> shape(rank), squeezed;
  for (size_t k = 0; k < rank; ++k) {
    const int64_t n = x->shape()[k], s = stride[k];
    if (s == 0) return ctx.Fail("stride: 0 at axis " + std::to_string(k));
    int64_t b = begin[k] < 0 ? begin[k] + n : begin[k];
    int64_t e = end[k] < 0 ? end[k] + n : end[k];
    if (bmask[k]) b = s > 0 ? 0 : n - 1;
    if (emask[k]) e = s > 0 ? n : -1;
    // Clamp as Python slicing does.
    b = s > 0 ? std::clamp<int64_t>(b, 0, n) : std::clamp<int64_t>(b, -1, n - 1);
    e = s > 0 ? std::clamp<int64_t>(e, 0, n) : std::clamp<int64_t>(e, -1, n - 1);
    if (smask[k]) e = b + (s > 0 ? 1 : -1);
    const int64_t count = s > 0 ? (e - b + s - 1) / s : (b - e - s - 1) / -s;
    shape[k] = std::max<int64_t>(count, 0);
    begin[k] = b;
    if (smask[k] && shape[k] != 1) return ctx.Fail("squeeze_mask at axis " + std::to_string(k) + ": index out of range");
    if (!smask[k]) squeezed.push_back(shape[k]);
  }
  Tensor y = Strided(*x, begin, stride, shape, x->dtype());
  y.Reshape(squeezed);
  return ctx.SetOutput(0, std::move(y));
}

Status SliceBySize(OpContext& ctx) {
  const Tensor* x = nullptr;
  std::vector<int64_t> begin, size;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("begin", &begin));
  PALETTIZE_RETURN_IF_ERROR(ctx.Ints("size", &size));
  const size_t rank = size_t(x->rank());
  if (begin.size() != rank || size.size() != rank) return ctx.Fail("begin and size need " + std::to_string(rank) + " values");
  for (size_t k = 0; k < rank; ++k) {
    const int64_t n = x->shape()[k];
    if (begin[k] < 0) begin[k] += n;
    if (size[k] == -1) size[k] = n - begin[k];
    if (begin[k] < 0 || size[k] < 0 || begin[k] + size[k] > n)
      return ctx.Fail("begin " + ShapeText(begin) + " size " + ShapeText(size) + " outside x " + ShapeText(x->shape()));
  }
  return ctx.SetOutput(0, Strided(*x, begin, std::vector<int64_t>(rank, 1), size, x->dtype()));
}

// gather(x, indices, axis): out[o..., i..., n...] = x[o..., indices[i...], n...]; negative
// indices count from the end. batch_dims other than 0 is refused.
Status Gather(OpContext& ctx) {
  const Tensor *x = nullptr, *ind = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("indices", &ind));
  int axis = 0;
  int64_t batch_dims = 0;
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", 0, x->rank(), &axis));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr("batch_dims", 0, &batch_dims));
  if (batch_dims != 0) return ctx.Fail("batch_dims " + std::to_string(batch_dims) + " is not supported yet");
  if (ind->is_float()) return ctx.Fail("indices: " + DescribeTensor(*ind) + ", expected integers");
  const AxisView in(x->shape(), axis);
  std::vector<int64_t> shape(x->shape().begin(), x->shape().begin() + axis);
  shape.insert(shape.end(), ind->shape().begin(), ind->shape().end());
  shape.insert(shape.end(), x->shape().begin() + axis + 1, x->shape().end());
  Tensor y(x->dtype(), shape);
  for (size_t j = 0; j < ind->size(); ++j) {
    int64_t v = ind->i()[j];
    if (v < 0) v += int64_t(in.len);
    if (v < 0 || v >= int64_t(in.len))
      return ctx.Fail("indices: " + std::to_string(ind->i()[j]) + " outside an axis of " + std::to_string(in.len));
  }
  for (size_t o = 0; o < in.outer; ++o)
    for (size_t j = 0; j < ind->size(); ++j) {
      int64_t v = ind->i()[j];
      if (v < 0) v += int64_t(in.len);
      for (size_t n = 0; n < in.inner; ++n)
        y.CopyElement((o * ind->size() + j) * in.inner + n, *x, (o * in.len + size_t(v)) * in.inner + n);
    }
  return ctx.SetOutput(0, std::move(y));
}

// gather_along_axis(x, indices, axis): indices has x's rank; out[idx] = x[idx with idx[axis]
// replaced by indices[idx]].
Status GatherAlongAxis(OpContext& ctx) {
  const Tensor *x = nullptr, *ind = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("indices", &ind));
  int axis = 0;
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", 0, x->rank(), &axis));
  if (ind->rank() != x->rank() || ind->is_float()) return ctx.Fail("indices: " + DescribeTensor(*ind) + " for x " + DescribeTensor(*x));
  for (int k = 0; k < x->rank(); ++k)
    if (k != axis && ind->dim(k) != x->dim(k)) return ctx.Fail("indices " + ShapeText(ind->shape()) + " for x " + ShapeText(x->shape()));
  Tensor y(x->dtype(), ind->shape());
  const std::vector<size_t> st = Strides(x->shape());
  const int64_t len = x->dim(axis);
  Status st_out;
  ForEachIndex(ind->shape(), [&](const std::vector<int64_t>& idx, size_t o) {
    int64_t v = ind->i()[o];
    if (v < 0) v += len;
    if (v < 0 || v >= len) {
      st_out = ctx.Fail("indices: " + std::to_string(ind->i()[o]) + " outside an axis of " + std::to_string(len));
      return;
    }
    size_t i = 0;
    for (size_t k = 0; k < idx.size(); ++k) i += size_t(int(k) == axis ? v : idx[k]) * st[k];
    y.CopyElement(o, *x, i);
  });
  PALETTIZE_RETURN_IF_ERROR(st_out);
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterSliceOps(OpRegistry& r) {
  r.Add("concat", [](OpContext& ctx) { return Join(ctx, false); });
  r.Add("stack", [](OpContext& ctx) { return Join(ctx, true); });
  r.Add("split", Split);
  r.Add("slice_by_index", SliceByIndex);
  r.Add("slice_by_size", SliceBySize);
  r.Add("gather", Gather);
  r.Add("gather_along_axis", GatherAlongAxis);
}

}  // namespace palettize::eval
