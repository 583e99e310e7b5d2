#!/usr/bin/env python3
"""Build deterministic Core ML .mlpackage fixtures for the palettize oracle tests.

Usage:
    make_fixtures.py OUTDIR [--only NAME ...]

Writes one package per fixture into OUTDIR plus OUTDIR/fixtures.json, a list of
{"name", "path", "description"} objects.  "path" is RELATIVE to OUTDIR (so the directory
can be built elsewhere and renamed into place); resolve it against the directory holding
fixtures.json.  fixtures.json is written last, so its presence means the set is complete.

All values come from seeded numpy RNGs; the whole run takes a few seconds.
Models are built with coremltools' MIL builder and ct.convert (default pass pipeline), so
const names are whatever coremltools assigns (e.g. "lin_weight_0"); the tests never rely
on specific names, only on coremltools' own reading of the saved packages.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import npcompat  # noqa: E402,F401  (before numpy: NPY_DISABLE_CPU_FEATURES)
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")

import coremltools as ct  # noqa: E402
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402
from coremltools.proto import MIL_pb2  # noqa: E402


def _rng(seed):
    return np.random.default_rng(seed)


def _f32(rng, shape, scale=0.1):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def _convert(prog, target, precision=ct.precision.FLOAT32):
    return ct.convert(
        prog,
        convert_to="mlprogram",
        minimum_deployment_target=target,
        compute_precision=precision,
        skip_model_load=True,
    )


# --------------------------------------------------------------------------------------
# Individual fixtures.  Each builder takes the output path and returns nothing.
# --------------------------------------------------------------------------------------


def _linear_prog(seed, target):
    rng = _rng(seed)
    w = _f32(rng, (128, 64))  # 8192 elements: above the 2048 threshold
    b = _f32(rng, (128,))  # 128 elements: below it
    idx = np.arange(0, 24, 2, dtype=np.int32)  # int32 const with 12 elements

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=target)
    def prog(x):
        y = mb.linear(x=x, weight=w, bias=b, name="lin")
        y = mb.relu(x=y, name="relu")
        return mb.gather(x=y, indices=idx, axis=1, name="pick")

    return prog


def build_linear_fp32(path):
    m = _convert(_linear_prog(1, ct.target.iOS16), ct.target.iOS16)
    m.save(path)


def build_linear_fp16(path):
    m = _convert(_linear_prog(2, ct.target.iOS15), ct.target.iOS15, ct.precision.FLOAT16)
    m.save(path)


def build_conv(path):
    rng = _rng(3)
    w_conv = _f32(rng, (32, 16, 3, 3))  # 4608
    b_conv = _f32(rng, (32,))
    w_small = _f32(rng, (8, 32, 1, 1))  # 256, below threshold
    w_tconv = _f32(rng, (8, 24, 4, 4))  # conv_transpose weight [Cin, Cout, kh, kw] = 3072

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 16, 8, 8))], opset_version=ct.target.iOS17)
    def prog(x):
        y = mb.conv(x=x, weight=w_conv, bias=b_conv, pad_type="same", name="conv1")
        y = mb.relu(x=y, name="relu1")
        y = mb.conv(x=y, weight=w_small, pad_type="valid", name="conv2")
        y = mb.conv_transpose(
            x=y, weight=w_tconv, pad_type="valid", strides=[2, 2], name="deconv"
        )
        return y

    _convert(prog, ct.target.iOS17).save(path)


def build_matmul(path):
    rng = _rng(4)
    y_const = _f32(rng, (64, 96))  # matmul y, 6144
    y_t_const = _f32(rng, (80, 96))  # matmul y with transpose_y, 7680
    x_t_const = _f32(rng, (64, 40))  # matmul x with transpose_x, 2560

    @mb.program(
        input_specs=[mb.TensorSpec(shape=(4, 64)), mb.TensorSpec(shape=(64, 8))],
        opset_version=ct.target.iOS18,
    )
    def prog(a, b):
        h = mb.matmul(x=a, y=y_const, name="mm_y")  # (4, 96)
        h = mb.matmul(x=h, y=y_t_const, transpose_y=True, name="mm_yT")  # (4, 80)
        g = mb.matmul(x=x_t_const, y=b, transpose_x=True, name="mm_xT")  # (40, 8)
        return h, g

    _convert(prog, ct.target.iOS18).save(path)


def build_embedding(path):
    rng = _rng(5)
    table = _f32(rng, (500, 32))  # 16000

    @mb.program(
        input_specs=[mb.TensorSpec(shape=(8,), dtype=types.int32)],
        opset_version=ct.target.iOS15,
    )
    def prog(ids):
        return mb.gather(x=table, indices=ids, axis=0, name="embed")

    _convert(prog, ct.target.iOS15).save(path)


def build_misc(path):
    """Thresholds, rank-1 weights, shared consts, small/immediate consts."""
    rng = _rng(6)
    shared = _f32(rng, (64, 64))  # 4096, consumed by linear AND matmul
    vec_big = _f32(rng, (4096,))  # rank 1, > 2048 elements
    w_2048 = _f32(rng, (32, 64))  # exactly 2048 elements: not > threshold
    w_2049 = _f32(rng, (2049, 1))  # 2049 elements
    w_tiny = _f32(rng, (3, 3))  # 9 elements: stored inline by coremltools
    sparse = _f32(rng, (64, 48))
    sparse[rng.random(sparse.shape) < 0.6] = 0.0  # sparse weight with few exact zeros
    lut_like = rng.choice(np.array([-0.5, -0.25, 0.0, 0.25, 0.5], np.float32), size=(48, 64))
    idx = np.arange(20, dtype=np.int32)[::-1].copy()  # int32, 20 elements

    @mb.program(
        input_specs=[
            mb.TensorSpec(shape=(2, 64)),
            mb.TensorSpec(shape=(4096,)),
            mb.TensorSpec(shape=(3, 3)),
        ],
        opset_version=ct.target.iOS16,
    )
    def prog(x, v, t):
        sc = mb.const(val=shared, name="shared_w")
        a = mb.linear(x=x, weight=sc, name="lin_shared")
        b = mb.matmul(x=x, y=sc, name="mm_shared")
        c = mb.add(x=a, y=b, name="add_ab")  # (2, 64)
        d = mb.matmul(x=c, y=mb.transpose(x=w_2048, perm=[1, 0], name="tr_2048"), name="mm_2048")
        d2 = mb.matmul(x=c, y=w_2048, transpose_y=True, name="mm_2048b")  # (2, 32)
        s = mb.matmul(x=c, y=sparse, name="mm_sparse")  # (2, 48)
        l = mb.matmul(x=s, y=lut_like, name="mm_lut")  # (2, 64)
        e = mb.mul(x=v, y=vec_big, name="mul_vec")
        f = mb.reshape(x=e, shape=[2048, 2], name="rs")
        head = mb.slice_by_size(x=v, begin=[0], size=[2049], name="sl")
        g = mb.matmul(x=mb.reshape(x=head, shape=[1, 2049], name="rs2"), y=w_2049, name="mm_2049")
        h = mb.mul(x=t, y=w_tiny, name="mul_tiny")
        k = mb.gather(x=l, indices=idx, axis=1, name="pick20")
        return d, d2, f, g, h, k

    _convert(prog, ct.target.iOS16).save(path)


def build_cond(path):
    rng = _rng(7)
    w_true = _f32(rng, (96, 64))
    w_false = _f32(rng, (96, 64))
    w_after = _f32(rng, (32, 96))

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=ct.target.iOS17)
    def prog(x):
        s = mb.reduce_sum(x=x, name="sum")
        pred = mb.greater(x=s, y=0.0, name="pred")
        # Defined in the outer block, consumed only inside both branches.
        w_outer = mb.const(val=w_true, name="w_outer")

        def true_fn():
            return mb.linear(x=x, weight=w_outer, name="lin_true")

        def false_fn():
            # w_false becomes a const op inside the nested block itself.
            a = mb.linear(x=x, weight=w_false, name="lin_false")
            b = mb.matmul(x=x, y=w_outer, transpose_y=True, name="mm_false")
            return mb.add(x=a, y=b, name="add_false")

        y = mb.cond(pred=pred, _true_fn=true_fn, _false_fn=false_fn, name="branch")
        return mb.linear(x=y, weight=w_after, name="lin_after")

    _convert(prog, ct.target.iOS17).save(path)


def _mf_source(seed, out_dim, shared_w, name_suffix):
    rng = _rng(seed)
    head = _f32(rng, (out_dim, 96))

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=ct.target.iOS18)
    def prog(x):
        h = mb.linear(x=x, weight=shared_w, name="trunk")
        h = mb.relu(x=h, name="relu")
        return mb.linear(x=h, weight=head, name="head_" + name_suffix)

    return _convert(prog, ct.target.iOS18)


def build_multifunction(path):
    rng = _rng(8)
    shared_w = _f32(rng, (96, 64))  # identical in both functions -> deduplicated blob
    with tempfile.TemporaryDirectory() as tmp:
        a = os.path.join(tmp, "a.mlpackage")
        b = os.path.join(tmp, "b.mlpackage")
        _mf_source(9, 40, shared_w, "a").save(a)
        _mf_source(10, 24, shared_w, "b").save(b)
        desc = ct.utils.MultiFunctionDescriptor()
        desc.add_function(a, "main", "main")
        desc.add_function(b, "main", "classify")
        desc.default_function_name = "main"
        ct.utils.save_multifunction(desc, path)


def build_pipeline(path):
    rng = _rng(11)
    w1 = _f32(rng, (96, 64))
    w2 = _f32(rng, (16, 96))
    b2 = _f32(rng, (16,))

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=ct.target.iOS16)
    def p1(x):
        return mb.relu(x=mb.linear(x=x, weight=w1, name="stage1"), name="hidden")

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 96))], opset_version=ct.target.iOS17)
    def p2(hidden):
        return mb.linear(x=hidden, weight=w2, bias=b2, name="stage2")

    m1 = _convert(p1, ct.target.iOS16)
    m2 = _convert(p2, ct.target.iOS17)
    # Make m2's input name match m1's output name so the pipeline wires them together.
    out_name = m1.get_spec().description.output[0].name
    in_name = m2.get_spec().description.input[0].name
    if out_name != in_name:
        ct.utils.rename_feature(m2._spec, in_name, out_name)  # in-place on the spec
        m2 = ct.models.MLModel(m2._spec, weights_dir=m2.weights_dir, skip_model_load=True)
    pipe = ct.utils.make_pipeline(m1, m2, compute_units=ct.ComputeUnit.CPU_ONLY)
    pipe.save(path)


def _compressed_model(seed, target):
    """fp16 model: l1 weight linear-quantized (int8), l2 weight palettized (uniform 4-bit)."""
    import coremltools.optimize.coreml as cto

    rng = _rng(seed)
    w1 = _f32(rng, (64, 64))
    w2 = _f32(rng, (96, 64))
    w3 = _f32(rng, (48, 96))  # left uncompressed

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 64))], opset_version=target)
    def prog(x):
        h = mb.linear(x=x, weight=w1, name="l1")
        h = mb.linear(x=h, weight=w2, name="l2")
        return mb.linear(x=h, weight=w3, name="l3")

    m = _convert(prog, target, ct.precision.FLOAT16)
    # With FLOAT16 precision the ops are renamed "<name>_cast_fp16".
    m = cto.palettize_weights(
        m,
        cto.OptimizationConfig(
            op_name_configs={"l2_cast_fp16": cto.OpPalettizerConfig(mode="uniform", nbits=4)}
        ),
    )
    m = cto.linear_quantize_weights(
        m,
        cto.OptimizationConfig(
            op_name_configs={"l1_cast_fp16": cto.OpLinearQuantizerConfig(mode="linear_symmetric")}
        ),
    )
    return m


def build_compressed_ios16(path):
    # iOS16: constexpr_affine_dequantize / constexpr_lut_to_dense with all data as attributes.
    _compressed_model(14, ct.target.iOS16).save(path)


def build_compressed_ios18(path):
    """iOS18 constexpr ops; the int8 `data` of constexpr_blockwise_shift_scale is moved out of
    its value binding into a separate const op bound by name, so the file has a large int8
    const whose only consumer is a constexpr_ op (must not be a palettization candidate)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src.mlpackage")
        _compressed_model(15, ct.target.iOS18).save(src)
        m = ct.models.MLModel(src, skip_model_load=True)
        spec = m.get_spec()
        moved = 0
        for fn in spec.mlProgram.functions.values():
            block = fn.block_specializations[fn.opset]
            ops = list(block.operations)
            new_ops = []
            for op in ops:
                if op.type == "constexpr_blockwise_shift_scale" and "data" in op.inputs:
                    binding = op.inputs["data"].arguments[0]
                    if binding.WhichOneof("binding") == "value":
                        op_name = op.attributes["name"].immediateValue.tensor.strings.values[0]
                        const_name = op_name + "_data"
                        c = MIL_pb2.Operation()
                        c.type = "const"
                        c.attributes["name"].type.tensorType.dataType = MIL_pb2.STRING
                        c.attributes["name"].immediateValue.tensor.strings.values.append(const_name)
                        c.attributes["val"].CopyFrom(binding.value)
                        out = c.outputs.add()
                        out.name = const_name
                        out.type.CopyFrom(binding.value.type)
                        new_ops.append(c)
                        binding.Clear()
                        binding.name = const_name
                        moved += 1
                new_ops.append(op)
            del block.operations[:]
            block.operations.extend(new_ops)
        assert moved == 1, moved
        ct.models.MLModel(spec, weights_dir=m.weights_dir, skip_model_load=True).save(path)


def _walk_ops(block):
    for op in block.operations:
        yield op
        for b in op.blocks:
            yield from _walk_ops(b)


def build_immediate(path, fp16):
    """A model whose large weight is an immediate value (not a blob)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src.mlpackage")
        if fp16:
            m = _convert(_linear_prog(12, ct.target.iOS16), ct.target.iOS16, ct.precision.FLOAT16)
        else:
            m = _convert(_linear_prog(13, ct.target.iOS16), ct.target.iOS16)
        m.save(src)
        m = ct.models.MLModel(src, skip_model_load=True)
        spec = m.get_spec()
        weights_dir = m.weights_dir
        moved = 0
        for fn in spec.mlProgram.functions.values():
            block = fn.block_specializations[fn.opset]
            for op in _walk_ops(block):
                if op.type != "const":
                    continue
                val = op.attributes["val"]
                if val.WhichOneof("value") != "blobFileValue":
                    continue
                tt = val.type.tensorType
                shape = [d.constant.size for d in tt.dimensions]
                # Move only the big weight (8192 elements) inline; leave the bias as a blob.
                if int(np.prod(shape)) < 2048:
                    continue
                arr = _read_blob(weights_dir, val.blobFileValue, tt.dataType, shape)
                new_val = MIL_pb2.Value()
                new_val.type.CopyFrom(val.type)
                if tt.dataType == MIL_pb2.FLOAT32:
                    new_val.immediateValue.tensor.floats.values.extend(arr.ravel().tolist())
                elif tt.dataType == MIL_pb2.FLOAT16:
                    new_val.immediateValue.tensor.bytes.values = arr.astype("<f2").tobytes()
                else:
                    raise RuntimeError("unexpected dtype")
                op.attributes["val"].CopyFrom(new_val)
                moved += 1
        assert moved == 1, moved
        # The now-unreferenced blob stays in weight.bin (a realistic leftover).
        out = ct.models.MLModel(spec, weights_dir=weights_dir, skip_model_load=True)
        out.save(path)


def _read_blob(weights_dir, blob_value, data_type, shape):
    """Minimal reader for a blob-v2 record (used only to build the immediate fixture)."""
    fname = os.path.join(weights_dir, blob_value.fileName.split("/")[-1])
    with open(fname, "rb") as f:
        f.seek(blob_value.offset)
        meta = f.read(64)
        sentinel, _mil_dtype = np.frombuffer(meta[:8], "<u4")
        size, data_off = np.frombuffer(meta[8:24], "<u8")
        assert sentinel == 0xDEADBEEF
        f.seek(int(data_off))
        raw = f.read(int(size))
    np_dtype = {MIL_pb2.FLOAT32: "<f4", MIL_pb2.FLOAT16: "<f2"}[data_type]
    return np.frombuffer(raw, np_dtype).reshape(shape)



# --------------------------------------------------------------------------------------
# Models in the wild: pipelines mixing ML Programs with other model types, and packages whose
# Manifest.json carries extra items the way Xcode and other tools write them.
# --------------------------------------------------------------------------------------


def _array_feature(desc_list, name, shape, dtype="FLOAT32", ranges=None):
    from coremltools.proto import FeatureTypes_pb2

    f = desc_list.add()
    f.name = name
    t = f.type.multiArrayType
    t.shape.extend(shape)
    t.dataType = FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Value(dtype)
    for lo, hi in ranges or []:
        r = t.shapeRange.sizeRanges.add()
        r.lowerBound, r.upperBound = lo, hi
    return f


def _proto_model(version, short_description):
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = version
    spec.description.metadata.shortDescription = short_description
    return spec


def build_pipeline_nms(path):
    """An object detector as Create ML / YOLO exports write it: a `pipeline` of an fp16 ML Program
    (shared trunk, class head, box head) followed by a NonMaximumSuppression model."""
    rng = _rng(20)
    n_boxes, n_classes = 16, 24
    w_trunk = _f32(rng, (128, 64))  # 8192
    b_trunk = _f32(rng, (128,))
    w_cls = _f32(rng, (n_classes, 128))  # 3072
    w_box = _f32(rng, (4, 128))  # 512: below the threshold
    b_box = _f32(rng, (4,))

    @mb.program(input_specs=[mb.TensorSpec(shape=(n_boxes, 64))], opset_version=ct.target.iOS17)
    def prog(features):
        h = mb.relu(x=mb.linear(x=features, weight=w_trunk, bias=b_trunk, name="trunk"), name="trunk_relu")
        conf = mb.softmax(x=mb.linear(x=h, weight=w_cls, name="cls_head"), axis=-1, name="raw_confidence")
        box = mb.sigmoid(x=mb.linear(x=h, weight=w_box, bias=b_box, name="box_head"), name="raw_coordinates")
        return conf, box

    detector = _convert(prog, ct.target.iOS17, ct.precision.FLOAT16)
    outs = [o.name for o in detector.get_spec().description.output]
    assert outs == ["raw_confidence", "raw_coordinates"], outs

    nms = _proto_model(3, "non-maximum suppression")
    _array_feature(nms.description.input, "raw_confidence", [n_boxes, n_classes])
    _array_feature(nms.description.input, "raw_coordinates", [n_boxes, 4])
    for name in ("iouThreshold", "confidenceThreshold"):
        f = nms.description.input.add()
        f.name = name
        f.type.doubleType.SetInParent()
        f.type.isOptional = True
    _array_feature(nms.description.output, "confidence", [0, n_classes], ranges=[(0, -1), (n_classes, n_classes)])
    _array_feature(nms.description.output, "coordinates", [0, 4], ranges=[(0, -1), (4, 4)])
    p = nms.nonMaximumSuppression
    p.confidenceInputFeatureName = "raw_confidence"
    p.coordinatesInputFeatureName = "raw_coordinates"
    p.iouThresholdInputFeatureName = "iouThreshold"
    p.confidenceThresholdInputFeatureName = "confidenceThreshold"
    p.confidenceOutputFeatureName = "confidence"
    p.coordinatesOutputFeatureName = "coordinates"
    p.iouThreshold = 0.45
    p.confidenceThreshold = 0.25
    p.pickTop.perClass = True
    p.stringClassLabels.vector.extend([f"class_{i:02d}" for i in range(n_classes)])
    nms_model = ct.models.MLModel(nms)

    pipe = ct.utils.make_pipeline(detector, nms_model, compute_units=ct.ComputeUnit.CPU_ONLY)
    pipe._spec.description.metadata.shortDescription = "detector + NMS"
    ct.models.MLModel(pipe._spec, weights_dir=pipe.weights_dir, skip_model_load=True).save(path)


def build_pipeline_classifier(path):
    """An image-classifier-like `pipelineClassifier` (as Create ML writes them): an fp32 ML Program
    feature extractor, then a Normalizer and a GLMClassifier."""
    rng = _rng(21)
    w1 = _f32(rng, (96, 64))  # 6144
    b1 = _f32(rng, (96,))
    w2 = _f32(rng, (48, 96))  # 4608
    n_classes, dim = 5, 48

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 64))], opset_version=ct.target.iOS16)
    def prog(x):
        h = mb.relu(x=mb.linear(x=x, weight=w1, bias=b1, name="fc1"), name="fc1_relu")
        e = mb.linear(x=h, weight=w2, name="fc2")
        return mb.reshape(x=e, shape=[dim], name="embedding")

    extractor = _convert(prog, ct.target.iOS16)

    norm = _proto_model(1, "L2 normalizer")
    _array_feature(norm.description.input, "embedding", [dim])
    _array_feature(norm.description.output, "embedding_l2", [dim], dtype="DOUBLE")
    norm.normalizer.normType = norm.normalizer.L2

    glm = _proto_model(1, "logistic regression")
    _array_feature(glm.description.input, "embedding_l2", [dim], dtype="DOUBLE")
    out = glm.description.output.add()
    out.name = "classLabel"
    out.type.stringType.SetInParent()
    out = glm.description.output.add()
    out.name = "classLabelProbs"
    out.type.dictionaryType.stringKeyType.SetInParent()
    glm.description.predictedFeatureName = "classLabel"
    glm.description.predictedProbabilitiesName = "classLabelProbs"
    c = glm.glmClassifier
    for row in rng.standard_normal((n_classes, dim)):
        c.weights.add().value.extend(row.tolist())
    c.offset.extend(rng.standard_normal(n_classes).tolist())
    c.postEvaluationTransform = c.Logit
    c.classEncoding = c.OneVsRest
    c.stringClassLabels.vector.extend(["cat", "dog", "bird", "fish", "frog"])

    pipe = ct.utils.make_pipeline(
        extractor, ct.models.MLModel(norm), ct.models.MLModel(glm), compute_units=ct.ComputeUnit.CPU_ONLY
    )
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = pipe._spec.specificationVersion
    spec.description.CopyFrom(pipe._spec.description)
    spec.description.predictedFeatureName = "classLabel"
    spec.description.predictedProbabilitiesName = "classLabelProbs"
    spec.description.metadata.shortDescription = "feature extractor + normalizer + GLM classifier"
    spec.pipelineClassifier.pipeline.CopyFrom(pipe._spec.pipeline)
    ct.models.MLModel(spec, weights_dir=pipe.weights_dir, skip_model_load=True).save(path)


def build_pipeline_regressor(path):
    """A `pipelineRegressor`: an iOS15 fp16 ML Program feature extractor, then a GLMRegressor."""
    rng = _rng(22)
    w1 = _f32(rng, (80, 32))  # 2560
    dim = 80

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 32))], opset_version=ct.target.iOS15)
    def prog(x):
        h = mb.relu(x=mb.linear(x=x, weight=w1, name="fc"), name="fc_relu")
        return mb.reshape(x=h, shape=[dim], name="features")

    extractor = _convert(prog, ct.target.iOS15, ct.precision.FLOAT16)

    glm = _proto_model(1, "linear regression")
    _array_feature(glm.description.input, "features", [dim])
    out = glm.description.output.add()
    out.name = "score"
    out.type.doubleType.SetInParent()
    glm.description.predictedFeatureName = "score"
    r = glm.glmRegressor
    r.weights.add().value.extend(rng.standard_normal(dim).tolist())
    r.offset.append(0.125)
    r.postEvaluationTransform = r.NoTransform

    pipe = ct.utils.make_pipeline(extractor, ct.models.MLModel(glm), compute_units=ct.ComputeUnit.CPU_ONLY)
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.specificationVersion = pipe._spec.specificationVersion
    spec.description.CopyFrom(pipe._spec.description)
    spec.description.predictedFeatureName = "score"
    spec.pipelineRegressor.pipeline.CopyFrom(pipe._spec.pipeline)
    ct.models.MLModel(spec, weights_dir=pipe.weights_dir, skip_model_load=True).save(path)


# Extra files of the manifest_overlays fixture, relative to Data/ (bytes written as they are).
OVERLAY_FILES = {
    "com.apple.CoreML/Metadata.json": json.dumps(
        {
            "author": "Palettize Oracle",
            "license": "MIT",
            "shortDescription": "A linear model whose metadata was edited in Xcode",
            "version": "2.1",
            "userDefined": {"com.example.training.epochs": "12"},
        },
        indent=2,
    ).encode() + b"\n",
    "com.apple.CoreML/FeatureDescriptions.json": json.dumps(
        {"Inputs": {"x": "a 64-element feature vector"}, "Outputs": {"pick": "12 selected activations"}},
        indent=2,
    ).encode() + b"\n",
    "com.example.tools/provenance.json": json.dumps(
        {"tool": "example-converter", "version": "0.9.1", "source": "model.onnx", "sha256": "0" * 64},
        separators=(",", ":"),
    ).encode(),
    "com.example.tools/calibration/stats.json": b'{"x": {"min": -3.5, "max": 3.25}}',
    "com.example.tools/calibration/README": b"calibration statistics\r\nnot a Core ML file\x00\xff",
}


def build_manifest_overlays(path):
    """An ML Program whose Manifest.json lists, besides coremltools' model and weights items,
    Xcode's Metadata.json / FeatureDescriptions.json overlays (author com.apple.CoreML) and items
    of a non-standard author outside com.apple.CoreML (a file and a folder), with the entries in an
    order coremltools never writes and the top-level keys reordered."""
    import uuid

    rng = _rng(23)
    _convert(_linear_prog(24, ct.target.iOS17), ct.target.iOS17, ct.precision.FLOAT16).save(path)
    with open(os.path.join(path, "Manifest.json")) as f:
        manifest = json.load(f)
    entries = manifest["itemInfoEntries"]
    by_path = {e["path"]: e for e in entries.values()}
    model_entry = by_path["com.apple.CoreML/model.mlmodel"]
    weights_entry = by_path["com.apple.CoreML/weights"]
    data = os.path.join(path, "Data")
    for rel, content in OVERLAY_FILES.items():
        os.makedirs(os.path.dirname(os.path.join(data, rel)), exist_ok=True)
        with open(os.path.join(data, rel), "wb") as f:
            f.write(content)

    def ident():
        return str(uuid.UUID(bytes=rng.bytes(16), version=4)).upper()

    items = [
        ({"author": "com.example.tools", "description": "Conversion provenance", "name": "provenance.json",
          "path": "com.example.tools/provenance.json"}),
        weights_entry,
        ({"author": "com.apple.CoreML", "description": "CoreML Model Feature Descriptions",
          "name": "FeatureDescriptions.json", "path": "com.apple.CoreML/FeatureDescriptions.json"}),
        model_entry,
        ({"author": "com.apple.CoreML", "description": "CoreML Model Metadata", "name": "Metadata.json",
          "path": "com.apple.CoreML/Metadata.json"}),
        ({"author": "com.example.tools", "description": "Calibration statistics", "name": "calibration",
          "path": "com.example.tools/calibration"}),
    ]
    new_entries = {}
    root = None
    for e in items:
        k = ident()
        new_entries[k] = e
        if e is model_entry:
            root = k
    out = {"rootModelIdentifier": root, "itemInfoEntries": new_entries,
           "fileFormatVersion": manifest["fileFormatVersion"]}
    with open(os.path.join(path, "Manifest.json"), "w") as f:
        json.dump(out, f, indent=4)
        f.write("\n")


FIXTURES = [
    ("linear_fp32", build_linear_fp32,
     "iOS16 fp32: linear weight 128x64 (blob), bias 128, int32 gather indices (12 elems, immediate)"),
    ("linear_fp16", build_linear_fp16,
     "iOS15 fp16 (compute_precision FLOAT16): linear weight/bias as fp16, int32 indices"),
    ("conv", build_conv,
     "iOS17 fp32: conv 32x16x3x3 + bias, 1x1 conv below threshold, conv_transpose 8x24x4x4"),
    ("matmul", build_matmul,
     "iOS18 fp32: matmul const y, const y with transpose_y, const x with transpose_x"),
    ("embedding", build_embedding,
     "iOS15 fp32: gather used as an embedding (const table 500x32 as x, input indices)"),
    ("misc", build_misc,
     "iOS16 fp32: shared const used by linear+matmul, exactly-2048 and 2049 element weights, "
     "rank-1 4096 weight, 9-element inline weight, sparse weight, 5-value weight, int32[20]"),
    ("cond", build_cond,
     "iOS17 fp32: cond; outer const w_outer consumed by linear (true branch) and matmul (false "
     "branch), plus consts defined inside a nested block"),
    ("multifunction", build_multifunction,
     "iOS18 multifunction (main, classify) sharing the deduplicated trunk weight"),
    ("pipeline", build_pipeline,
     "pipeline of two ML Programs (iOS16 + iOS17), weights in 0-weight.bin / 1-weight.bin"),
    ("compressed_ios16", build_compressed_ios16,
     "iOS16 fp16: l1 int8 constexpr_affine_dequantize, l2 4-bit constexpr_lut_to_dense "
     "(attributes only), l3 plain fp16 weight"),
    ("compressed_ios18", build_compressed_ios18,
     "iOS18 fp16: constexpr_blockwise_shift_scale whose int8 data (64x64) is a separate const "
     "bound by name (feeds only a constexpr_ op), 4-bit constexpr_lut_to_dense, plain l3"),
    ("immediate_fp32", lambda p: build_immediate(p, fp16=False),
     "iOS16 fp32 linear whose 128x64 weight is an immediateValue (floats); old blob left unreferenced"),
    ("immediate_fp16", lambda p: build_immediate(p, fp16=True),
     "iOS16 fp16 linear whose 128x64 weight is an immediateValue (bytes); old blob left unreferenced"),
    ("pipeline_nms", build_pipeline_nms,
     "pipeline: iOS17 fp16 ML Program detector (trunk 128x64, class head 24x128, box head 4x128) + "
     "NonMaximumSuppression model (spec 3)"),
    ("pipeline_classifier", build_pipeline_classifier,
     "pipelineClassifier: iOS16 fp32 ML Program (96x64, 48x96) + Normalizer (L2) + GLMClassifier (5 labels)"),
    ("pipeline_regressor", build_pipeline_regressor,
     "pipelineRegressor: iOS15 fp16 ML Program (80x32) + GLMRegressor"),
    ("manifest_overlays", build_manifest_overlays,
     "iOS17 fp16 linear; Manifest.json with Xcode's Metadata.json / FeatureDescriptions.json overlays, "
     "a non-standard author's file and folder outside com.apple.CoreML, entries and keys reordered"),
]

FIXTURE_NAMES = [f[0] for f in FIXTURES]


def build_all(outdir, only=None):
    os.makedirs(outdir, exist_ok=True)
    index = []
    for name, builder, description in FIXTURES:
        if only and name not in only:
            continue
        rel = name + ".mlpackage"
        dst = os.path.join(outdir, rel)
        if os.path.exists(dst):
            shutil.rmtree(dst)
        builder(dst)
        index.append({"name": name, "path": rel, "description": description})
    tmp_json = os.path.join(outdir, ".fixtures.json.tmp")
    with open(tmp_json, "w") as f:
        json.dump(index, f, indent=2)
    os.replace(tmp_json, os.path.join(outdir, "fixtures.json"))
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--only", nargs="*", help="build only these fixtures")
    args = ap.parse_args(argv)
    index = build_all(args.outdir, args.only)
    for e in index:
        print(f"{e['name']:16s} {os.path.join(args.outdir, e['path'])}", file=sys.stderr)


if __name__ == "__main__":
    main()
