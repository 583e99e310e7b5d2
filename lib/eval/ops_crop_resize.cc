// crop_resize: boxes of x [B, C, H, W] resampled bilinearly to target_height x target_width
// (coremltools' image_resizing.py: iOS15, iOS16's pad_value, iOS17's boxes and box_indices).
//
// Boxes: iOS15/16 take roi [N, 1, 4, 1, 1] (each box cropped from every image: output
// [N, B, C, th, tw]) or [N, 1, 5, 1, 1] (the first value the image index: output [N, 1, C, th, tw]);
// iOS17 takes boxes [N, 4] and box_indices [N] (default 0..N-1): output [N, C, th, tw]. A box's four
// values follow box_coordinate_mode; normalized_coordinates scales them by (H - 1) and (W - 1),
// spatial_scale multiplies them. A center-size box spans center -/+ size / 2.
//
// Sampling: along each axis the box's start s and end e (e < s flips the crop) take the place of
// resize_bilinear's source range [0, in - 1], with in = e - s + 1; so ALIGN_CORNERS samples
// s + i (e - s) / (out - 1) (the box's centre when out = 1), as coremltools' tests of the op expect.
// A sample point outside [0, H - 1] x [0, W - 1] reads pad_value (0 before iOS16); inside, the
// four neighbours are interpolated. The sampling modes other than ALIGN_CORNERS and
// STRICT_ALIGN_CORNERS follow resize_bilinear's formulas under that substitution: documented by
// Core ML only for resize, so not checked against Core ML itself.
#include <cmath>

#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

struct Box {
  double y0 = 0, x0 = 0, y1 = 0, x1 = 0;
  int64_t image = 0;
};

// Sample points of one axis of a box from s to e, `out` of them.
Status BoxGrid(OpContext& ctx, const std::string& mode, double s, double e, int64_t out,
               std::vector<double>* g) {
  g->assign(size_t(out), 0.0);
  const double span = e - s, in = span + 1, n = double(out);
  for (int64_t i = 0; i < out; ++i) {
    const double k = double(i);
    double v = 0;
    if (mode == "STRICT_ALIGN_CORNERS" || mode == "ALIGN_CORNERS") {
      v = out > 1 ? k * span / (n - 1) : (mode == "ALIGN_CORNERS" ? span / 2 : 0.0);
    } else if (mode == "DEFAULT") {
      v = out > 1 ? k * (in - in / n) / (n - 1) : 0.0;
    } else if (mode == "OFFSET_CORNERS") {
      const double delta = std::max(1.0, span) / n;
      v = 0.5 * delta + k * delta;
    } else if (mode == "UNALIGN_CORNERS") {
      v = (k + 0.5) * in / n - 0.5;
    } else {
      return ctx.Fail(
          "sampling_mode: '" + mode +
          "', expected DEFAULT, STRICT_ALIGN_CORNERS, ALIGN_CORNERS, OFFSET_CORNERS or UNALIGN_CORNERS");
    }
    (*g)[size_t(i)] = s + v;
  }
  return Status::OK();
}

// The four values `v` of a box in box_coordinate_mode `mode`, as (y0, x0, y1, x1).
Status Corners(OpContext& ctx, const std::string& mode, const double v[4], Box* b) {
  if (mode == "CORNERS_HEIGHT_FIRST") {
    *b = {v[0], v[1], v[2], v[3], b->image};
  } else if (mode == "CORNERS_WIDTH_FIRST") {
    *b = {v[1], v[0], v[3], v[2], b->image};
  } else if (mode == "CENTER_SIZE_HEIGHT_FIRST") {
    *b = {v[0] - v[2] / 2, v[1] - v[3] / 2, v[0] + v[2] / 2, v[1] + v[3] / 2, b->image};
  } else if (mode == "CENTER_SIZE_WIDTH_FIRST") {
    *b = {v[1] - v[3] / 2, v[0] - v[2] / 2, v[1] + v[3] / 2, v[0] + v[2] / 2, b->image};
  } else {
    return ctx.Fail("box_coordinate_mode: '" + mode +
                    "', expected CORNERS_HEIGHT_FIRST, CORNERS_WIDTH_FIRST, CENTER_SIZE_HEIGHT_FIRST or "
                    "CENTER_SIZE_WIDTH_FIRST");
  }
  return Status::OK();
}

// An image index (a float of roi or an integer of box_indices) checked against the batch.
Status ImageIndex(OpContext& ctx, const std::string& param, double v, int64_t batch, int64_t* out) {
  if (!(v >= 0 && v < double(batch)) || v != std::floor(v))
    return ctx.Fail(param + ": image index " + std::to_string(v) + " is not in [0, " + std::to_string(batch) +
                    ")");
  *out = int64_t(v);
  return Status::OK();
}

// The boxes, each with the image it is cropped from, or -1 for every image (iOS15/16 rois of 4
// values: the output then has an image axis, *every_image true).
Status ReadBoxes(OpContext& ctx, int64_t batch, const std::string& mode, std::vector<Box>* boxes,
                 bool* every_image) {
  const Tensor *roi = nullptr, *given = nullptr, *indices = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("roi", &roi));
  *every_image = false;
  if (roi != nullptr) {
    const int64_t width = roi->rank() == 5 ? roi->dim(2) : 0;
    if (roi->rank() != 5 || roi->dim(1) != 1 || (width != 4 && width != 5) || roi->dim(3) != 1 ||
        roi->dim(4) != 1 || !roi->is_float())
      return ctx.Fail("roi: " + DescribeTensor(*roi) + ", expected float [N, 1, 4 or 5, 1, 1]");
    *every_image = width == 4;
    for (int64_t n = 0; n < roi->dim(0); ++n) {
      const float* r = roi->f().data() + n * width;
      const double v[4] = {r[width - 4], r[width - 3], r[width - 2], r[width - 1]};
      Box b;
      b.image = -1;
      if (width == 5) PALETTIZE_RETURN_IF_ERROR(ImageIndex(ctx, "roi", r[0], batch, &b.image));
      PALETTIZE_RETURN_IF_ERROR(Corners(ctx, mode, v, &b));
      boxes->push_back(b);
    }
    return Status::OK();
  }
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("boxes", &given));
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("box_indices", &indices));
  if (given->rank() != 2 || given->dim(1) != 4 || given->is_string())
    return ctx.Fail("boxes: " + DescribeTensor(*given) + ", expected numbers [N, 4]");
  const int64_t n_boxes = given->dim(0);
  if (indices != nullptr &&
      (indices->rank() != 1 || indices->dim(0) != n_boxes || !IsIntDType(indices->dtype())))
    return ctx.Fail("box_indices: " + DescribeTensor(*indices) + ", expected integers [" +
                    std::to_string(n_boxes) + "]");
  for (int64_t n = 0; n < n_boxes; ++n) {
    double v[4];
    for (int k = 0; k < 4; ++k) v[k] = given->at(size_t(n * 4 + k));
    Box b;
    const double index = indices != nullptr ? double(indices->i()[size_t(n)]) : double(n);
    PALETTIZE_RETURN_IF_ERROR(ImageIndex(ctx, "box_indices", index, batch, &b.image));
    PALETTIZE_RETURN_IF_ERROR(Corners(ctx, mode, v, &b));
    boxes->push_back(b);
  }
  return Status::OK();
}

// One plane [H, W] sampled at gy x gx into `dst`; points outside the plane read `pad`.
void SamplePlane(const float* src, int64_t h, int64_t w, const std::vector<double>& gy,
                 const std::vector<double>& gx, float pad, float* dst) {
  const size_t ow = gx.size();
  for (size_t i = 0; i < gy.size(); ++i) {
    const double py = gy[i];
    const bool y_in = py >= 0 && py <= double(h - 1);
    const int64_t y0 = y_in ? int64_t(std::floor(py)) : 0, y1 = std::min(y0 + 1, h - 1);
    const double fy = py - double(y0);
    for (size_t j = 0; j < ow; ++j) {
      const double px = gx[j];
      if (!y_in || !(px >= 0 && px <= double(w - 1))) {
        dst[i * ow + j] = pad;
        continue;
      }
      const int64_t x0 = int64_t(std::floor(px)), x1 = std::min(x0 + 1, w - 1);
      const double fx = px - double(x0);
      const double top = src[y0 * w + x0] * (1 - fx) + src[y0 * w + x1] * fx;
      const double bottom = src[y1 * w + x0] * (1 - fx) + src[y1 * w + x1] * fx;
      dst[i * ow + j] = float(top * (1 - fy) + bottom * fy);
    }
  }
}

Status CropResize(OpContext& ctx) {
  const Tensor* x = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  const bool roi_form = ctx.Has("roi");  // iOS15/16: the output has an image axis
  if (x->rank() != 4) return ctx.Fail("x: " + DescribeTensor(*x) + ", expected [B, C, H, W]");
  int64_t th = 0, tw = 0;
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr("target_height", 1, &th));
  PALETTIZE_RETURN_IF_ERROR(ctx.IntOr("target_width", 1, &tw));
  if (th < 1 || tw < 1)
    return ctx.Fail("target_height, target_width: " + std::to_string(th) + ", " + std::to_string(tw) +
                    ", expected >= 1");
  bool normalized = false;
  double scale = 1, pad = 0;
  std::string box_mode, sampling;
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("normalized_coordinates", false, &normalized));
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("spatial_scale", 1.0, &scale));
  PALETTIZE_RETURN_IF_ERROR(ctx.FloatOr("pad_value", 0.0, &pad));
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("box_coordinate_mode", "CORNERS_HEIGHT_FIRST", &box_mode));
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("sampling_mode", "DEFAULT", &sampling));
  const int64_t batch = x->dim(0), c = x->dim(1), h = x->dim(2), w = x->dim(3);
  std::vector<Box> boxes;
  bool every_image = false;
  PALETTIZE_RETURN_IF_ERROR(ReadBoxes(ctx, batch, box_mode, &boxes, &every_image));
  const int64_t n_boxes = int64_t(boxes.size()), images = every_image ? batch : 1;
  std::vector<int64_t> shape = {n_boxes, c, th, tw};
  if (roi_form) shape = {n_boxes, images, c, th, tw};
  Tensor y(OutDType(ctx, 0, x->dtype()), shape);  // checks the size before anything is sampled
  if (y.size() == 0) return ctx.SetOutput(0, std::move(y));
  const double sy = (normalized ? double(h - 1) : 1.0) * scale,
               sx = (normalized ? double(w - 1) : 1.0) * scale;
  std::vector<double> gy, gx;
  float* dst = y.f().data();
  for (const Box& b : boxes) {
    PALETTIZE_RETURN_IF_ERROR(BoxGrid(ctx, sampling, b.y0 * sy, b.y1 * sy, th, &gy));
    PALETTIZE_RETURN_IF_ERROR(BoxGrid(ctx, sampling, b.x0 * sx, b.x1 * sx, tw, &gx));
    for (int64_t i = 0; i < images; ++i) {
      const int64_t image = b.image < 0 ? i : b.image;
      for (int64_t ch = 0; ch < c; ++ch, dst += th * tw)
        SamplePlane(x->f().data() + (image * c + ch) * h * w, h, w, gy, gx, float(pad), dst);
    }
  }
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterCropResizeOps(OpRegistry& r) { r.Add("crop_resize", CropResize); }

}  // namespace palettize::eval
