// linear and matmul (einsum and the convolutions live in their own files).
#include <algorithm>

#include "eval/broadcast.h"
#include "eval/gemm.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

// y = x W^T + b: x [..., D_in], weight [D_out, D_in], bias [D_out] (optional).
Status Linear(OpContext& ctx) {
  const Tensor *x = nullptr, *w = nullptr, *bias = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "weight", &w));
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("bias", &bias));
  if (x->rank() < 1 || w->rank() != 2 || w->dim(1) != x->dim(x->rank() - 1))
    return ctx.Fail("x " + ShapeText(x->shape()) + " and weight " + ShapeText(w->shape()) +
                    ": expected x [..., D_in] and weight [D_out, D_in]");
  const int64_t d_out = w->dim(0), d_in = w->dim(1);
  if (bias != nullptr && (!bias->is_float() || bias->size() != size_t(d_out)))
    return ctx.Fail("bias: " + DescribeTensor(*bias) + ", expected " + std::to_string(d_out) + " floats");
  std::vector<int64_t> shape = x->shape();
  shape.back() = d_out;
  Tensor y(OutDType(ctx, 0, x->dtype()), shape);
  const int64_t rows = int64_t(ElementCount(std::vector<int64_t>(shape.begin(), shape.end() - 1)));
  Gemm(x->f().data(), w->f().data(), y.f().data(), rows, d_out, d_in, false, true);
  if (bias != nullptr)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < d_out; ++j) y.f()[size_t(r * d_out + j)] += bias->f()[size_t(j)];
  return ctx.SetOutput(0, std::move(y));
}

// matmul: x [..., M, K] (or [K]), y [..., K, N] (or [K]), batch dimensions broadcast as NumPy's
// matmul; transpose_x / transpose_y swap the last two axes of a rank >= 2 input first.
Status Matmul(OpContext& ctx) {
  const Tensor *x = nullptr, *y = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "y", &y));
  bool tx = false, ty = false;
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("transpose_x", false, &tx));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("transpose_y", false, &ty));
  if (x->rank() < 1 || y->rank() < 1) return ctx.Fail("x and y need rank >= 1");
  // Rank-1 operands become [1, K] and [K, 1]; their unit axis is dropped from the result.
  std::vector<int64_t> xs = x->shape(), ys = y->shape();
  const bool x_vec = xs.size() == 1, y_vec = ys.size() == 1;
  if (x_vec) {
    xs.insert(xs.begin(), 1);
    tx = false;
  }
  if (y_vec) {
    ys.push_back(1);
    ty = false;
  }
  const int64_t m = tx ? xs[xs.size() - 1] : xs[xs.size() - 2];
  const int64_t kx = tx ? xs[xs.size() - 2] : xs[xs.size() - 1];
  const int64_t ky = ty ? ys[ys.size() - 1] : ys[ys.size() - 2];
  const int64_t n = ty ? ys[ys.size() - 2] : ys[ys.size() - 1];
  if (kx != ky)
    return ctx.Fail("x " + ShapeText(x->shape()) + " and y " + ShapeText(y->shape()) + " (transpose_x " +
                    (tx ? "true" : "false") + ", transpose_y " + (ty ? "true" : "false") +
                    "): inner dimensions " + std::to_string(kx) + " and " + std::to_string(ky) + " differ");
  const std::vector<int64_t> bx(xs.begin(), xs.end() - 2), by(ys.begin(), ys.end() - 2);
  std::vector<int64_t> batch;
  if (!BroadcastShape(bx, by, &batch))
    return ctx.Fail("batch dimensions " + ShapeText(bx) + " and " + ShapeText(by) + " do not broadcast");
  std::vector<int64_t> shape = batch;
  if (!x_vec) shape.push_back(m);
  if (!y_vec) shape.push_back(n);
  Tensor out(OutDType(ctx, 0, x->dtype()), shape);
  const auto sx = BroadcastStrides(bx, batch), sy = BroadcastStrides(by, batch);
  const size_t mat_x = size_t(m * kx), mat_y = size_t(kx * n), mat_o = size_t(m * n);
  ForEachBroadcast(batch, sx, sy, [&](size_t o, size_t ix, size_t iy) {
    Gemm(x->f().data() + ix * mat_x, y->f().data() + iy * mat_y, out.f().data() + o * mat_o, m, n, kx, tx,
         ty);
  });
  return ctx.SetOutput(0, std::move(out));
}

}  // namespace

void RegisterLinearOps(OpRegistry& r) {
  r.Add("linear", Linear);
  r.Add("matmul", Matmul);
}

}  // namespace palettize::eval
