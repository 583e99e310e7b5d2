"""crop_resize in `palettize eval`: programs built with coremltools' MIL builder at iOS15 (roi of 4
and 5 values), iOS16 (pad_value) and iOS17 (boxes, box_indices), converted and run on .npz inputs.
Checked against the values coremltools' own tests of the op expect from Core ML (ALIGN_CORNERS),
and against numpy written after the op's definition (every box_coordinate_mode and sampling_mode;
the modes other than the two ALIGN ones extend resize_bilinear's formulas to the box: lib/eval/
ops_crop_resize.cc). No PyTorch model converts to crop_resize (coremltools has no roi_align
converter), so there is no torch reference."""
import subprocess

import pytest

np = pytest.importorskip("numpy")
ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

MODES = ["DEFAULT", "STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "OFFSET_CORNERS", "UNALIGN_CORNERS"]
X16 = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)


def run_eval(bin_, prog, target, tmp_path, inputs):
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target,
                       compute_precision=ct.precision.FLOAT32)
    path = tmp_path / "m.mlpackage"
    model.save(str(path))
    main = model.get_spec().mlProgram.functions["main"]
    assert "crop_resize" in {op.type for op in main.block_specializations[main.opset].operations}
    np.savez(tmp_path / "in.npz", **inputs)
    r = subprocess.run([bin_, "eval", path, "--inputs", tmp_path / "in.npz", "--outputs", tmp_path / "out.npz",
                        "--force"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as z:
        return z["y"]


def axis_grid(mode, s, e, n):
    """Sample points from s to e: resize_bilinear's grid with the box in place of [0, in - 1]."""
    span, i = e - s, np.arange(n, dtype=np.float64)
    size = span + 1
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        g = i * span / (n - 1) if n > 1 else np.full(n, span / 2 if mode == "ALIGN_CORNERS" else 0.0)
    elif mode == "DEFAULT":
        g = i * (size - size / n) / (n - 1) if n > 1 else np.zeros(n)
    elif mode == "OFFSET_CORNERS":
        delta = max(1.0, span) / n
        g = 0.5 * delta + i * delta
    else:  # UNALIGN_CORNERS
        g = (i + 0.5) * size / n - 0.5
    return s + g


def sample(plane, gy, gx, pad):
    h, w = plane.shape
    out = np.full((len(gy), len(gx)), pad, dtype=np.float64)
    for a, py in enumerate(gy):
        for b, px in enumerate(gx):
            if 0 <= py <= h - 1 and 0 <= px <= w - 1:
                y0, x0 = int(np.floor(py)), int(np.floor(px))
                y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
                fy, fx = py - y0, px - x0
                top = plane[y0, x0] * (1 - fx) + plane[y0, x1] * fx
                bottom = plane[y1, x0] * (1 - fx) + plane[y1, x1] * fx
                out[a, b] = top * (1 - fy) + bottom * fy
    return out


def corners(box, box_mode):
    a, b, c, d = (float(v) for v in box)
    return {"CORNERS_HEIGHT_FIRST": (a, b, c, d), "CORNERS_WIDTH_FIRST": (b, a, d, c),
            "CENTER_SIZE_HEIGHT_FIRST": (a - c / 2, b - d / 2, a + c / 2, b + d / 2),
            "CENTER_SIZE_WIDTH_FIRST": (b - d / 2, a - c / 2, b + d / 2, a + c / 2)}[box_mode]


def reference(x, boxes, images, th, tw, mode, box_mode="CORNERS_HEIGHT_FIRST", normalized=False, scale=1.0,
              pad=0.0):
    """[N, C, th, tw]: box n of `boxes` cropped from image images[n] of x."""
    _, c, h, w = x.shape
    sy, sx = (h - 1 if normalized else 1) * scale, (w - 1 if normalized else 1) * scale
    out = np.zeros((len(boxes), c, th, tw))
    for n, (box, image) in enumerate(zip(boxes, images)):
        y0, x0, y1, x1 = corners(box, box_mode)
        gy, gx = axis_grid(mode, y0 * sy, y1 * sy, th), axis_grid(mode, x0 * sx, x1 * sx, tw)
        for ch in range(c):
            out[n, ch] = sample(x[image, ch].astype(np.float64), gy, gx, pad)
    return out


@pytest.mark.parametrize("roi,th,tw,normalized,want", [
    # coremltools' iOS14 TestCropResize: the values Core ML gives (ALIGN_CORNERS).
    ([1, 1, 2, 2], 2, 2, False, [6, 7, 10, 11]),
    ([1, 1, 2, 2], 4, 4, False, [6, 6.333333, 6.666666, 7, 7.333333, 7.666666, 8, 8.333333, 8.666666, 9,
                                 9.333333, 9.666666, 10, 10.333333, 10.666666, 11]),
    ([1, 1, 2, 2], 1, 1, False, [8.5]),
    ([0, 0.0, 0.0, 1.0 / 3, 1.0 / 3], 2, 2, True, [1, 2, 5, 6]),
    ([2, 2, 1, 1], 2, 2, False, [11, 10, 7, 6]),
])
def test_core_ml_values_ios15(palettize_bin, tmp_path, roi, th, tw, normalized, want):
    roi = np.array(roi, np.float32).reshape(1, 1, len(roi), 1, 1)

    @mb.program(input_specs=[mb.TensorSpec(shape=X16.shape)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.crop_resize(x=x, roi=roi, target_height=th, target_width=tw, normalized_coordinates=normalized,
                              box_coordinate_mode="CORNERS_HEIGHT_FIRST", sampling_mode="ALIGN_CORNERS", name="y")

    got = run_eval(palettize_bin, prog, ct.target.iOS15, tmp_path, {"x": X16})
    assert got.shape == (1, 1, 1, th, tw)
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-5)


@pytest.mark.parametrize("pad", [0.0, 10.0])
def test_core_ml_values_ios16_pad(palettize_bin, tmp_path, pad):
    # coremltools' iOS16 TestCropResize: boxes partly outside the image read pad_value.
    roi = np.array([[0, 0.1, 0.3, 1.3, 1], [0, 0.5, 1.8, 1.0, 0.3], [0, 0.0, 0.4, 0.6, 0.7]],
                   np.float32).reshape(3, 1, 5, 1, 1)

    @mb.program(input_specs=[mb.TensorSpec(shape=X16.shape)], opset_version=ct.target.iOS16)
    def prog(x):
        return mb.crop_resize(x=x, roi=roi, target_height=2, target_width=2, normalized_coordinates=True,
                              sampling_mode="ALIGN_CORNERS", pad_value=pad, name="y")

    got = run_eval(palettize_bin, prog, ct.target.iOS16, tmp_path, {"x": X16})
    want = [3.1, 5.2, pad, pad, pad, 7.9, pad, 13.9, 2.2, 3.1, 9.4, 10.3]
    assert got.shape == (3, 1, 1, 2, 2)
    np.testing.assert_allclose(got.ravel(), want, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("box_mode", ["CORNERS_HEIGHT_FIRST", "CORNERS_WIDTH_FIRST", "CENTER_SIZE_HEIGHT_FIRST",
                                      "CENTER_SIZE_WIDTH_FIRST"])
def test_every_mode_ios17(palettize_bin, tmp_path, mode, box_mode):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 3, 6, 7)).astype(np.float32)
    boxes = np.array([[0.5, 1.0, 4.5, 5.0], [3.0, 2.5, 2.0, 3.0], [1.0, 0.0, 6.0, 8.0]], np.float32)
    indices = np.array([1, 0, 1], np.int32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.crop_resize(x=x, boxes=boxes, box_indices=indices, target_height=3, target_width=4,
                              spatial_scale=0.75, box_coordinate_mode=box_mode, sampling_mode=mode,
                              pad_value=-2.0, name="y")

    got = run_eval(palettize_bin, prog, ct.target.iOS17, tmp_path, {"x": x})
    want = reference(x, boxes, indices, 3, 4, mode, box_mode, scale=0.75, pad=-2.0)
    assert got.shape == (3, 3, 3, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert (got == -2.0).any() == (want == -2.0).any()


def test_roi_of_four_crops_every_image_ios15(palettize_bin, tmp_path):
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 2, 5, 5)).astype(np.float32)
    roi = np.array([[0.1, 0.2, 0.9, 0.7], [0.0, 0.0, 1.0, 1.0]], np.float32).reshape(2, 1, 4, 1, 1)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS15)
    def prog(x):
        return mb.crop_resize(x=x, roi=roi, target_height=2, target_width=3, normalized_coordinates=True,
                              name="y")

    got = run_eval(palettize_bin, prog, ct.target.iOS15, tmp_path, {"x": x})
    assert got.shape == (2, 2, 2, 2, 3)  # [N, B, C, th, tw]
    for b in range(2):
        want = reference(x, roi.reshape(2, 4), [b, b], 2, 3, "DEFAULT", normalized=True)
        np.testing.assert_allclose(got[:, b], want, rtol=1e-5, atol=1e-5)
