// Index ops: gather_nd, scatter, scatter_along_axis, cumsum, topk, argsort (reduce_argmax/argmin:
// ops_reduce.cc).
// Indices may be negative (counted from the end of their axis); one out of range fails the op.
#include <algorithm>
#include <numeric>

#include "eval/broadcast.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

// Index `v` on an axis of `dim` elements, normalised to [0, dim); false when out of range.
bool WrapIndex(int64_t v, int64_t dim, int64_t* out) {
  if (v < 0) v += dim;
  *out = v;
  return v >= 0 && v < dim;
}

Status IndexTensor(OpContext& ctx, const std::string& param, const Tensor** out) {
  PALETTIZE_RETURN_IF_ERROR(ctx.Input(param, out));
  if (!IsIntDType((*out)->dtype()))
    return ctx.Fail(param + ": " + DescribeTensor(**out) + ", expected integers");
  return Status::OK();
}

Status OutOfRange(OpContext& ctx, int64_t v, int64_t dim) {
  return ctx.Fail("index " + std::to_string(v) + " out of range for an axis of " + std::to_string(dim));
}

// outer x axis x inner view of a shape around `axis`.
void Split(const std::vector<int64_t>& shape, int axis, size_t* outer, size_t* inner) {
  *outer = *inner = 1;
  for (int k = 0; k < axis; ++k) *outer *= size_t(shape[size_t(k)]);
  for (size_t k = size_t(axis) + 1; k < shape.size(); ++k) *inner *= size_t(shape[k]);
}

// output = x[indices[..., :]]: indices [*K, k] address the first k axes of x after batch_dims
// shared leading axes.
Status GatherNd(OpContext& ctx) {
  const Tensor *x = nullptr, *idx = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(IndexTensor(ctx, "indices", &idx));
  int64_t batch_dims = 0;
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr("batch_dims", 0, &batch_dims));
  const int64_t depth = idx->rank() > 0 ? idx->dim(idx->rank() - 1) : 0;
  bool ok =
      idx->rank() >= 1 && batch_dims >= 0 && batch_dims < idx->rank() && batch_dims + depth <= x->rank();
  for (int64_t a = 0; ok && a < batch_dims; ++a) ok = idx->dim(int(a)) == x->dim(int(a));
  if (!ok)
    return ctx.Fail("indices " + ShapeText(idx->shape()) + " with batch_dims " + std::to_string(batch_dims) +
                    " do not address x " + ShapeText(x->shape()));
  std::vector<int64_t> shape(idx->shape().begin(), idx->shape().end() - 1);
  shape.insert(shape.end(), x->shape().begin() + batch_dims + depth, x->shape().end());
  Tensor y(OutDType(ctx, 0, x->dtype()), shape);
  const std::vector<size_t> xs = Strides(x->shape());
  const size_t slice =
      ElementCount(std::vector<int64_t>(x->shape().begin() + batch_dims + depth, x->shape().end()));
  const size_t per_batch =
      ElementCount(std::vector<int64_t>(idx->shape().begin() + batch_dims, idx->shape().end() - 1));
  const size_t rows = idx->size() / size_t(std::max<int64_t>(depth, 1));
  for (size_t r = 0; r < rows; ++r) {
    const size_t b = per_batch == 0 ? 0 : r / per_batch;
    // The batch's offset: b spelled in x's leading batch_dims axes.
    size_t off = 0, rest = b;
    for (int64_t a = batch_dims; a-- > 0;) {
      off += (rest % size_t(x->dim(int(a)))) * xs[size_t(a)];
      rest /= size_t(x->dim(int(a)));
    }
    for (int64_t j = 0; j < depth; ++j) {
      const int64_t dim = x->dim(int(batch_dims + j));
      int64_t v = 0;
      if (!WrapIndex(idx->i()[r * size_t(depth) + size_t(j)], dim, &v))
        return OutOfRange(ctx, idx->i()[r * size_t(depth) + size_t(j)], dim);
      off += size_t(v) * xs[size_t(batch_dims + j)];
    }
    for (size_t k = 0; k < slice; ++k) {
      if (x->is_float())
        y.f()[r * slice + k] = x->f()[off + k];
      else
        y.set(r * slice + k, x->at(off + k));
    }
  }
  return ctx.SetOutput(0, std::move(y));
}

// Combines an existing value with an update by scatter's `mode`.
Status ScatterMode(OpContext& ctx, std::string* mode, double (**f)(double, double)) {
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("mode", "add", mode));
  if (*mode == "update")
    *f = [](double, double u) { return u; };
  else if (*mode == "add")
    *f = [](double a, double u) { return a + u; };
  else if (*mode == "sub")
    *f = [](double a, double u) { return a - u; };
  else if (*mode == "mul")
    *f = [](double a, double u) { return a * u; };
  else if (*mode == "div")
    *f = [](double a, double u) { return a / u; };
  else if (*mode == "max")
    *f = [](double a, double u) { return std::max(a, u); };
  else if (*mode == "min")
    *f = [](double a, double u) { return std::min(a, u); };
  else
    return ctx.Fail("mode: '" + *mode + "', expected update, add, sub, mul, div, max or min");
  return Status::OK();
}

// The parameters scatter and scatter_along_axis share.
struct ScatterArgs {
  const Tensor *data = nullptr, *indices = nullptr, *updates = nullptr;
  int axis = 0;
  double (*combine)(double, double) = nullptr;  // the mode: how an update meets the value there
};

Status ReadScatterArgs(OpContext& ctx, ScatterArgs* a) {
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("data", &a->data));
  PALETTIZE_RETURN_IF_ERROR(IndexTensor(ctx, "indices", &a->indices));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("updates", &a->updates));
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", 0, a->data->rank(), &a->axis));
  std::string mode;
  return ScatterMode(ctx, &mode, &a->combine);
}

// scatter: updates [data[:axis], *indices.shape, data[axis+1:]] combined into data at
// data[..., indices[i], ...], in index order (a later duplicate sees the earlier result).
Status Scatter(OpContext& ctx) {
  ScatterArgs args;
  PALETTIZE_RETURN_IF_ERROR(ReadScatterArgs(ctx, &args));
  const Tensor *data = args.data, *idx = args.indices, *upd = args.updates;
  const int axis = args.axis;
  double (*f)(double, double) = args.combine;
  std::vector<int64_t> want(data->shape().begin(), data->shape().begin() + axis);
  want.insert(want.end(), idx->shape().begin(), idx->shape().end());
  want.insert(want.end(), data->shape().begin() + axis + 1, data->shape().end());
  if (upd->shape() != want)
    return ctx.Fail("updates " + ShapeText(upd->shape()) + ", expected " + ShapeText(want));
  size_t outer = 0, inner = 0;
  Split(data->shape(), axis, &outer, &inner);
  const int64_t dim = data->dim(axis);
  const size_t n = idx->size();
  Tensor y = *data;
  for (size_t o = 0; o < outer; ++o)
    for (size_t i = 0; i < n; ++i) {
      int64_t v = 0;
      if (!WrapIndex(idx->i()[i], dim, &v)) return OutOfRange(ctx, idx->i()[i], dim);
      for (size_t k = 0; k < inner; ++k) {
        const size_t d = (o * size_t(dim) + size_t(v)) * inner + k;
        y.set(d, f(y.at(d), upd->at((o * n + i) * inner + k)));
      }
    }
  return ctx.SetOutput(0, std::move(y));
}

// scatter_along_axis: indices and updates of one shape, rank of data; element p of updates goes
// to data at p with its `axis` coordinate replaced by indices[p].
Status ScatterAlongAxis(OpContext& ctx) {
  ScatterArgs args;
  PALETTIZE_RETURN_IF_ERROR(ReadScatterArgs(ctx, &args));
  const Tensor *data = args.data, *idx = args.indices, *upd = args.updates;
  const int axis = args.axis;
  double (*f)(double, double) = args.combine;
  bool ok = idx->shape() == upd->shape() && idx->rank() == data->rank();
  for (int a = 0; ok && a < data->rank(); ++a) ok = a == axis || idx->dim(a) == data->dim(a);
  if (!ok)
    return ctx.Fail("indices " + ShapeText(idx->shape()) + " and updates " + ShapeText(upd->shape()) +
                    " do not match data " + ShapeText(data->shape()) + " off axis " + std::to_string(axis));
  size_t outer = 0, inner = 0;
  Split(idx->shape(), axis, &outer, &inner);
  const int64_t dim = data->dim(axis), len = idx->dim(axis);
  Tensor y = *data;
  for (size_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < len; ++j)
      for (size_t k = 0; k < inner; ++k) {
        const size_t p = (o * size_t(len) + size_t(j)) * inner + k;
        int64_t v = 0;
        if (!WrapIndex(idx->i()[p], dim, &v)) return OutOfRange(ctx, idx->i()[p], dim);
        const size_t d = (o * size_t(dim) + size_t(v)) * inner + k;
        y.set(d, f(y.at(d), upd->at(p)));
      }
  return ctx.SetOutput(0, std::move(y));
}

// cumsum along `axis` (default 0); exclusive starts each sum at 0, reverse sums from the end.
Status Cumsum(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  if (x->is_string() || x->rank() == 0)
    return ctx.Fail("x: " + DescribeTensor(*x) + ", expected numbers of rank >= 1");
  int axis = 0;
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", 0, x->rank(), &axis));
  bool exclusive = false, reverse = false;
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("exclusive", false, &exclusive));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("reverse", false, &reverse));
  Tensor y(OutDType(ctx, 0, x->dtype()), x->shape());
  size_t outer = 0, inner = 0;
  Split(x->shape(), axis, &outer, &inner);
  const int64_t len = x->dim(axis);
  for (size_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < inner; ++k) {
      double acc = 0;  // float inputs: summed as float below, to match fp32 accumulation
      float facc = 0;
      for (int64_t s = 0; s < len; ++s) {
        const int64_t j = reverse ? len - 1 - s : s;
        const size_t p = (o * size_t(len) + size_t(j)) * inner + k;
        if (x->is_float()) {
          if (exclusive) y.f()[p] = facc;
          facc += x->f()[p];
          if (!exclusive) y.f()[p] = facc;
        } else {
          if (exclusive) y.set(p, acc);
          acc += x->at(p);
          if (!exclusive) y.set(p, acc);
        }
      }
    }
  return ctx.SetOutput(0, std::move(y));
}

// Calls emit(o, i, order) for every line of x along `axis` (o: the index before the axis, i: after
// it), `order` the line's positions sorted by value, ascending or descending; stable, so ties keep
// the lower position first (numpy's stable sort, which coremltools' value inference uses).
template <typename Emit>
void ForEachSortedLine(const Tensor& x, int axis, bool ascending, Emit emit) {
  const int64_t len = x.dim(axis);
  size_t outer = 0, inner = 0;
  Split(x.shape(), axis, &outer, &inner);
  std::vector<int64_t> order(static_cast<size_t>(len));
  for (size_t o = 0; o < outer; ++o)
    for (size_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return x.at((o * size_t(len) + size_t(j)) * inner + i); };
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return ascending ? at(a) < at(b) : at(a) > at(b); });
      emit(o, i, order);
    }
}

// topk: the k largest (ascending: smallest) values along `axis` and their indices; ties keep the
// lower index first. With sort false the k values keep their order along the axis.
Status Topk(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  if (x->is_string() || x->rank() == 0)
    return ctx.Fail("x: " + DescribeTensor(*x) + ", expected numbers of rank >= 1");
  int axis = 0;
  int64_t k = 1;
  bool ascending = false, sort = true, return_indices = true;
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", -1, x->rank(), &axis));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr("k", 1, &k));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("ascending", false, &ascending));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("sort", true, &sort));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("return_indices", true, &return_indices));
  const int64_t len = x->dim(axis);
  if (k == -1) k = len;
  if (k < 1 || k > len)
    return ctx.Fail("k: " + std::to_string(k) + ", expected 1 to " + std::to_string(len) + " (axis " +
                    std::to_string(axis) + ")");
  std::vector<int64_t> shape = x->shape();
  shape[size_t(axis)] = k;
  Tensor values(OutDType(ctx, 0, x->dtype()), shape);
  if (return_indices && ctx.num_outputs() < 2)
    return ctx.Fail("return_indices is true but the op declares one output");
  Tensor indices(return_indices ? DeclaredDType(ctx, 1, 0) : x->dtype(),
                 return_indices ? shape : std::vector<int64_t>{});
  size_t outer = 0, inner = 0;
  Split(x->shape(), axis, &outer, &inner);
  ForEachSortedLine(*x, axis, ascending, [&](size_t o, size_t i, std::vector<int64_t>& order) {
    if (!sort) std::sort(order.begin(), order.begin() + k);
    for (int64_t j = 0; j < k; ++j) {
      const size_t p = (o * size_t(k) + size_t(j)) * inner + i;
      values.set(p, x->at((o * size_t(len) + size_t(order[size_t(j)])) * inner + i));
      if (return_indices) indices.set(p, double(order[size_t(j)]));
    }
  });
  PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(0, std::move(values)));
  if (!return_indices) return Status::OK();
  return ctx.SetOutput(1, std::move(indices));
}

// argsort: the indices that sort x along `axis`, descending by default (coremltools' value
// inference: np.argsort(-x)); ties keep the lower index first (numpy's stable sort).
Status Argsort(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  if (x->is_string() || x->rank() == 0)
    return ctx.Fail("x: " + DescribeTensor(*x) + ", expected numbers of rank >= 1");
  int axis = 0;
  bool ascending = false;
  PALETTIZE_RETURN_IF_ERROR(AxisParam(ctx, "axis", -1, x->rank(), &axis));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("ascending", false, &ascending));
  const int64_t len = x->dim(axis);
  if (ctx.num_outputs() != 1 || !ctx.output_type(0).tensor || !IsIntDType(ctx.output_type(0).dtype))
    return ctx.Fail("expected one integer tensor output");
  Tensor indices(ctx.output_type(0).dtype, x->shape());
  size_t outer = 0, inner = 0;
  Split(x->shape(), axis, &outer, &inner);
  ForEachSortedLine(*x, axis, ascending, [&](size_t o, size_t i, const std::vector<int64_t>& order) {
    for (int64_t j = 0; j < len; ++j)
      indices.i()[(o * size_t(len) + size_t(j)) * inner + i] = order[size_t(j)];
  });
  return ctx.SetOutput(0, std::move(indices));
}

}  // namespace

void RegisterIndexOps(OpRegistry& r) {
  r.Add("gather_nd", GatherNd);
  r.Add("scatter", Scatter);
  r.Add("scatter_along_axis", ScatterAlongAxis);
  r.Add("cumsum", Cumsum);
  r.Add("topk", Topk);
  r.Add("argsort", Argsort);
}

}  // namespace palettize::eval
