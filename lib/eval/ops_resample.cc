// upsample_nearest_neighbor, resize_nearest_neighbor, upsample_bilinear, resize_bilinear and
// iOS17's resize on the last two axes of x [*D, H, W]. Each output coordinate maps to a source grid point as
// coremltools' image_resizing.py (iOS15, iOS16) describes; bilinear reads the two neighbours
// of the point along each axis.
#include <algorithm>
#include <cmath>

#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

// Source coordinates of an axis of `in` samples resized to `out` samples.
using Grid = std::vector<double>;

Grid Clamped(Grid g, int64_t in) {
  for (double& v : g) v = std::min(double(in - 1), std::max(0.0, v));
  return g;
}

// resize_bilinear's sampling modes (iOS15 image_resizing.py, resize_bilinear notes).
Status SamplingGrid(OpContext& ctx, const std::string& mode, int64_t in, int64_t out, Grid* g) {
  g->assign(size_t(out), 0.0);
  const double xi = double(in), xo = double(out);
  for (int64_t i = 0; i < out; ++i) {
    double v = 0;
    if (mode == "STRICT_ALIGN_CORNERS" || mode == "ALIGN_CORNERS") {
      v = out > 1 ? double(i) * (xi - 1) / (xo - 1) : (mode == "ALIGN_CORNERS" ? (xi - 1) / 2 : 0.0);
    } else if (mode == "DEFAULT") {
      v = out > 1 ? double(i) * (xi - xi / xo) / (xo - 1) : 0.0;
    } else if (mode == "OFFSET_CORNERS") {
      const double delta = std::max(1.0, xi - 1) / xo;
      v = 0.5 * delta + double(i) * delta;
    } else if (mode == "UNALIGN_CORNERS") {
      v = (double(i) + 0.5) * xi / xo - 0.5;
    } else {
      return ctx.Fail(
          "sampling_mode: '" + mode +
          "', expected DEFAULT, STRICT_ALIGN_CORNERS, ALIGN_CORNERS, OFFSET_CORNERS or UNALIGN_CORNERS");
    }
    (*g)[size_t(i)] = v;
  }
  *g = Clamped(*g, in);
  return Status::OK();
}

// Bilinear interpolation of every [H, W] plane of x at the grid points gy x gx.
Tensor Bilinear(const Tensor& x, int dtype, const Grid& gy, const Grid& gx) {
  const int r = x.rank();
  const int64_t h = x.dim(r - 2), w = x.dim(r - 1), oh = int64_t(gy.size()), ow = int64_t(gx.size());
  std::vector<int64_t> shape = x.shape();
  shape[size_t(r - 2)] = oh;
  shape[size_t(r - 1)] = ow;
  Tensor y(dtype, shape);
  const size_t planes = size_t(h * w) == 0 ? 0 : x.size() / size_t(h * w);
  for (size_t p = 0; p < planes; ++p) {
    const float* src = x.f().data() + p * size_t(h * w);
    float* dst = y.f().data() + p * size_t(oh * ow);
    for (int64_t i = 0; i < oh; ++i) {
      const int64_t y0 = int64_t(std::floor(gy[size_t(i)])), y1 = std::min(y0 + 1, h - 1);
      const float fy = float(gy[size_t(i)] - double(y0));
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t x0 = int64_t(std::floor(gx[size_t(j)])), x1 = std::min(x0 + 1, w - 1);
        const float fx = float(gx[size_t(j)] - double(x0));
        const float top = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
        const float bottom = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
        dst[i * ow + j] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return y;
}

Status RankAtLeast3(OpContext& ctx, const Tensor& x) {
  if (x.rank() < 3) return ctx.Fail("x: " + DescribeTensor(x) + ", expected [*D, H, W] with rank >= 3");
  return Status::OK();
}

// Output size floor(in * scale); fails when it is not positive.
Status ScaledSize(OpContext& ctx, const std::string& param, int64_t in, double* scale, int64_t* out) {
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr(param, 1.0, scale));
  *out = ToInt64(std::floor(double(in) * *scale));
  if (!(*scale > 0) || *out < 1) return ctx.Fail(param + ": " + std::to_string(*scale) + " gives no output");
  return Status::OK();
}

Status TargetSize(OpContext& ctx, const std::string& param, int64_t* out) {
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr(param, 1, out));
  if (*out < 1) return ctx.Fail(param + ": " + std::to_string(*out) + ", expected >= 1");
  return Status::OK();
}

// Nearest neighbour: output i reads source floor(i * in / out) (integer arithmetic for whole
// scales), clamped; works on any dtype.
Status Nearest(OpContext& ctx, bool by_scale) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(RankAtLeast3(ctx, *x));
  const int r = x->rank();
  const int64_t h = x->dim(r - 2), w = x->dim(r - 1);
  int64_t oh = 0, ow = 0;
  double sh = 0, sw = 0;
  if (by_scale) {
    PALETTIZE_RETURN_IF_ERROR(ScaledSize(ctx, "scale_factor_height", h, &sh, &oh));
    PALETTIZE_RETURN_IF_ERROR(ScaledSize(ctx, "scale_factor_width", w, &sw, &ow));
  } else {
    PALETTIZE_RETURN_IF_ERROR(TargetSize(ctx, "target_size_height", &oh));
    PALETTIZE_RETURN_IF_ERROR(TargetSize(ctx, "target_size_width", &ow));
    sh = double(oh) / double(h);
    sw = double(ow) / double(w);
  }
  std::vector<int64_t> shape = x->shape();
  shape[size_t(r - 2)] = oh;
  shape[size_t(r - 1)] = ow;
  Tensor y(OutDType(ctx, 0, x->dtype()), shape);
  auto src_index = [](int64_t i, double scale, int64_t in) {
    return std::min(in - 1, int64_t(std::floor(double(i) / scale)));
  };
  std::vector<int64_t> ys(static_cast<size_t>(oh)), xs(static_cast<size_t>(ow));
  for (int64_t i = 0; i < oh; ++i) ys[size_t(i)] = src_index(i, sh, h);
  for (int64_t j = 0; j < ow; ++j) xs[size_t(j)] = src_index(j, sw, w);
  const size_t planes = size_t(h * w) == 0 ? 0 : x->size() / size_t(h * w);
  for (size_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const size_t s = p * size_t(h * w) + size_t(ys[size_t(i)] * w + xs[size_t(j)]);
        const size_t d = p * size_t(oh * ow) + size_t(i * ow + j);
        if (x->is_float())
          y.f()[d] = x->f()[s];
        else
          y.set(d, x->at(s));
      }
  return ctx.SetOutput(0, std::move(y));
}

// upsample_bilinear: align_corners (default true) and, from iOS16, half_pixel_centers (default
// !align_corners). align_corners maps the corner samples onto each other; otherwise output i
// reads (i + 0.5) * in / out - 0.5 with half-pixel centres, i * in / out without.
Status UpsampleBilinear(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(RankAtLeast3(ctx, *x));
  const int r = x->rank();
  const int64_t h = x->dim(r - 2), w = x->dim(r - 1);
  int64_t oh = 0, ow = 0;
  double sh = 0, sw = 0;
  PALETTIZE_RETURN_IF_ERROR(ScaledSize(ctx, "scale_factor_height", h, &sh, &oh));
  PALETTIZE_RETURN_IF_ERROR(ScaledSize(ctx, "scale_factor_width", w, &sw, &ow));
  bool align = true, half = false;
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("align_corners", true, &align));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("half_pixel_centers", !align, &half));
  if (align && half) return ctx.Fail("align_corners and half_pixel_centers are both true");
  const std::string mode = align ? "STRICT_ALIGN_CORNERS" : half ? "UNALIGN_CORNERS" : "";
  Grid gy, gx;
  if (mode.empty()) {
    gy.resize(size_t(oh));
    gx.resize(size_t(ow));
    for (int64_t i = 0; i < oh; ++i) gy[size_t(i)] = double(i) * double(h) / double(oh);
    for (int64_t j = 0; j < ow; ++j) gx[size_t(j)] = double(j) * double(w) / double(ow);
    gy = Clamped(gy, h);
    gx = Clamped(gx, w);
  } else {
    PALETTIZE_RETURN_IF_ERROR(SamplingGrid(ctx, mode, h, oh, &gy));
    PALETTIZE_RETURN_IF_ERROR(SamplingGrid(ctx, mode, w, ow, &gx));
  }
  return ctx.SetOutput(0, Bilinear(*x, OutDType(ctx, 0, x->dtype()), gy, gx));
}

Status ResizeBilinear(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(RankAtLeast3(ctx, *x));
  int64_t oh = 0, ow = 0;
  PALETTIZE_RETURN_IF_ERROR(TargetSize(ctx, "target_size_height", &oh));
  PALETTIZE_RETURN_IF_ERROR(TargetSize(ctx, "target_size_width", &ow));
  std::string mode;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("sampling_mode", "DEFAULT", &mode));
  Grid gy, gx;
  PALETTIZE_RETURN_IF_ERROR(SamplingGrid(ctx, mode, x->dim(x->rank() - 2), oh, &gy));
  PALETTIZE_RETURN_IF_ERROR(SamplingGrid(ctx, mode, x->dim(x->rank() - 1), ow, &gx));
  return ctx.SetOutput(0, Bilinear(*x, OutDType(ctx, 0, x->dtype()), gy, gx));
}

// iOS17 resize: the last `resized_dims` (1 or 2) axes of x take their sizes from the last entries
// of `shape` (0 keeps x's size). LINEAR samples as resize_bilinear with `sampling_mode` on each
// resized axis; NEAREST_NEIGHBOR reads source floor(i * in / out), as resize_nearest_neighbor
// (coremltools gives no sampling mode for it, and its converters emit none).
Status Resize(OpContext& ctx) {
  const Tensor *x = nullptr, *shape = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("shape", &shape));
  int64_t resized = 0;
  PALETTIZE_RETURN_IF_ERROR(ctx.Int("resized_dims", &resized));
  std::string interpolation, mode;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("interpolation_mode", "LINEAR", &interpolation));
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("sampling_mode", "DEFAULT", &mode));
  if (!IsIntDType(shape->dtype()) || shape->rank() != 1)
    return ctx.Fail("shape: " + DescribeTensor(*shape) + ", expected integers of rank 1");
  const int r = x->rank();
  if (resized < 1 || resized > 2 || resized > shape->dim(0) || shape->dim(0) > r || r < 2)
    return ctx.Fail("resized_dims " + std::to_string(resized) + " with shape " + DescribeTensor(*shape) +
                    " and x " + DescribeTensor(*x) + ": expected 1 or 2, at most shape's length <= x's rank");
  std::vector<int64_t> sizes = {x->dim(r - 2), x->dim(r - 1)};  // the output's last two sizes
  for (int64_t k = 0; k < resized; ++k) {
    const int64_t want = shape->i()[size_t(shape->dim(0) - resized + k)];
    if (want < 0) return ctx.Fail("shape: a negative size " + std::to_string(want));
    if (want > 0) sizes[size_t(2 - resized + k)] = want;
  }
  const int64_t h = x->dim(r - 2), w = x->dim(r - 1), oh = sizes[0], ow = sizes[1];
  if ((h == 0 || w == 0) && oh * ow > 0)
    return ctx.Fail("x: " + DescribeTensor(*x) + " has nothing to sample");
  Grid gy(static_cast<size_t>(oh)), gx(static_cast<size_t>(ow));
  if (interpolation == "LINEAR") {
    if (!x->is_float()) return ctx.Fail("x: " + DescribeTensor(*x) + ", LINEAR needs a float tensor");
    for (int64_t i = 0; i < oh; ++i) gy[size_t(i)] = double(i);
    if (resized == 2) PALETTIZE_RETURN_IF_ERROR(SamplingGrid(ctx, mode, h, oh, &gy));
    PALETTIZE_RETURN_IF_ERROR(SamplingGrid(ctx, mode, w, ow, &gx));
  } else if (interpolation == "NEAREST_NEIGHBOR") {
    for (int64_t i = 0; i < oh; ++i) gy[size_t(i)] = double(std::min(h - 1, i * h / oh));
    for (int64_t j = 0; j < ow; ++j) gx[size_t(j)] = double(std::min(w - 1, j * w / ow));
  } else {
    return ctx.Fail("interpolation_mode: '" + interpolation + "', expected LINEAR or NEAREST_NEIGHBOR");
  }
  const int dtype = OutDType(ctx, 0, x->dtype());
  if (interpolation == "LINEAR") return ctx.SetOutput(0, Bilinear(*x, dtype, gy, gx));
  std::vector<int64_t> out_shape = x->shape();
  out_shape[size_t(r - 2)] = oh;
  out_shape[size_t(r - 1)] = ow;
  Tensor y(dtype, out_shape);
  const size_t planes = size_t(h * w) == 0 ? 0 : x->size() / size_t(h * w);
  for (size_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        y.set(p * size_t(oh * ow) + size_t(i * ow + j),
              x->at(p * size_t(h * w) + size_t(int64_t(gy[size_t(i)]) * w + int64_t(gx[size_t(j)]))));
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterResampleOps(OpRegistry& r) {
  r.Add("upsample_nearest_neighbor", [](OpContext& ctx) { return Nearest(ctx, true); });
  r.Add("resize_nearest_neighbor", [](OpContext& ctx) { return Nearest(ctx, false); });
  r.Add("upsample_bilinear", UpsampleBilinear);
  r.Add("resize_bilinear", ResizeBilinear);
  r.Add("resize", Resize);
}

}  // namespace palettize::eval
