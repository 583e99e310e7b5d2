#!/usr/bin/env python3
"""coremltools-side helpers for the `palettize compress` oracle tests (test/oracle/test_compress_oracle.py).

Everything here is coremltools' own view of a package:
  * raise_target_copy      copy a package and raise its ML Program(s) to iOS16/17/18 in the spec
                           (specificationVersion + Function.opset + block_specializations key), so
                           coremltools' palettize_weights agrees to work on it;
  * ct_palettize           coremltools.optimize.coreml.palettize_weights with a config dict;
  * decompressed_index     every tensor const after coremltools decompression
                           (decompress_weights(), or the WeightDecompressor pass applied straight
                           to the pymil program for models decompress_weights refuses);
  * const_index            every tensor const of a package as it is (dump_weights);
  * lut_info               the palettized op chain of one weight, read from the protobuf and the
                           pymil program (LUT shape, indices dtype, per-table values);
  * resolved_configs       coremltools' own config lookup (OptimizationConfig._get_const_op_config)
                           for every const, to check the config the report claims.

Usable as a script for manual comparisons:
    compress_oracle.py sse ORIGINAL.mlpackage PALETTIZED.mlpackage
prints per-weight SSE of PALETTIZED (decompressed by coremltools) against ORIGINAL.
"""

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import npcompat  # noqa: E402  (before numpy: NPY_DISABLE_CPU_FEATURES)
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dump_weights  # noqa: E402

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    import coremltools as ct  # noqa: E402
    import coremltools.optimize.coreml as cto  # noqa: E402
    from coremltools.proto import Model_pb2  # noqa: E402

TARGET_SPEC = {"iOS15": 6, "iOS16": 7, "iOS17": 8, "iOS18": 9}
TARGET_OPSET = {"iOS15": "CoreML5", "iOS16": "CoreML6", "iOS17": "CoreML7", "iOS18": "CoreML8"}
SPEC_TARGET = {v: k for k, v in TARGET_SPEC.items()}
OPSET_TARGET = {v: k for k, v in TARGET_OPSET.items()}

# Config keys of a palettize config (our YAML / report), and the subset coremltools knows.
CONFIG_KEYS = (
    "mode", "nbits", "granularity", "group_size", "channel_axis", "cluster_dim",
    "enable_per_channel_scale", "lut_dtype", "weight_threshold",
)
CT_KEYS = (
    "mode", "nbits", "granularity", "group_size", "channel_axis", "cluster_dim",
    "enable_per_channel_scale", "weight_threshold",
)
CONFIG_DEFAULTS = {
    "mode": "kmeans", "nbits": None, "granularity": "per_tensor", "group_size": 32,
    "channel_axis": None, "cluster_dim": 1, "enable_per_channel_scale": False,
    "lut_dtype": None, "weight_threshold": 2048,
}


@contextlib.contextmanager
def quiet():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


# --------------------------------------------------------------------------------------
# Package / spec plumbing
# --------------------------------------------------------------------------------------


def root_model_file(pkg):
    with open(Path(pkg) / "Manifest.json") as f:
        man = json.load(f)
    entry = man["itemInfoEntries"][man["rootModelIdentifier"]]
    return Path(pkg) / "Data" / entry["path"]


def read_spec(pkg):
    spec = Model_pb2.Model()
    spec.ParseFromString(root_model_file(pkg).read_bytes())
    return spec


def raise_target_copy(src, dst, target):
    """Copy package `src` to `dst`, raising every ML Program below `target` to it (spec only)."""
    shutil.copytree(src, dst)
    for dirpath, _dirs, files in os.walk(dst):
        os.chmod(dirpath, 0o755)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o644)
    spec = read_spec(dst)
    want_ver = TARGET_SPEC[target]
    want_opset = TARGET_OPSET[target]

    def fix(s):
        kind = s.WhichOneof("Type")
        if kind == "mlProgram":
            if s.specificationVersion < want_ver:
                s.specificationVersion = want_ver
            for fn in s.mlProgram.functions.values():
                old = fn.opset
                if TARGET_SPEC[OPSET_TARGET[old]] < want_ver:
                    block = fn.block_specializations[old]
                    fn.block_specializations[want_opset].CopyFrom(block)
                    del fn.block_specializations[old]
                    fn.opset = want_opset
        elif kind in ("pipeline", "pipelineClassifier", "pipelineRegressor"):
            subs = {
                "pipeline": lambda x: x.pipeline.models,
                "pipelineClassifier": lambda x: x.pipelineClassifier.pipeline.models,
                "pipelineRegressor": lambda x: x.pipelineRegressor.pipeline.models,
            }[kind](s)
            for sub in subs:
                fix(sub)
            s.specificationVersion = max([s.specificationVersion] + [m.specificationVersion for m in subs])

    fix(spec)
    root_model_file(dst).write_bytes(spec.SerializeToString())
    return dst


def program_specs(pkg):
    """[(program path, Model spec)] of every ML Program in the package."""
    return list(dump_weights.iter_programs(read_spec(pkg)))


_proto_ops = dump_weights._proto_ops  # every op of a block, nested blocks included


def proto_op_index(pkg):
    """{(program, function): {output name: proto Operation}} for every op of every function."""
    res = {}
    for prog_path, pspec in program_specs(pkg):
        for fname, fn in pspec.mlProgram.functions.items():
            d = {}
            for op in _proto_ops(fn.block_specializations[fn.opset]):
                for o in op.outputs:
                    d[o.name] = op
            res[(prog_path, fname)] = d
    return res


def op_name(op):
    return op.attributes["name"].immediateValue.tensor.strings.values[0]


def binding_dims(value_type):
    return [int(d.constant.size) for d in value_type.tensorType.dimensions]


# --------------------------------------------------------------------------------------
# Const indexes (original / palettized / decompressed)
# --------------------------------------------------------------------------------------


class ConstIndex:
    """Tensor consts of a package, per (program, function), findable by name or consumer binding."""

    def __init__(self):
        self.by_fn = {}

    def add(self, program, function, name, value, consumers):
        fn = self.by_fn.setdefault((program, function), {"name": {}, "binding": {}})
        fn["name"][name] = (value, consumers)
        for c in consumers:
            fn["binding"].setdefault((c["op_name"], c["input"]), []).append(name)

    def names(self, program, function):
        return set(self.by_fn.get((program, function), {"name": {}})["name"])

    def get(self, program, function, name):
        fn = self.by_fn.get((program, function))
        if fn is None or name not in fn["name"]:
            return None
        return fn["name"][name][0]

    def find(self, rec, extra_names=()):
        """(matched name, value) for original weight `rec`: by name, then by consumer binding."""
        fn = self.by_fn.get((rec["program"], rec["function"]))
        if fn is None:
            return None, None
        for n in (rec.get("output", rec["name"]), rec["name"], *extra_names):
            if n in fn["name"]:
                return n, fn["name"][n][0]
        cands = set()
        for c in rec["consumers"]:
            for n in fn["binding"].get((c["op_name"], c["input"]), []):
                cands.add(n)
        if len(cands) == 1:
            n = cands.pop()
            return n, fn["name"][n][0]
        return None, None


def const_index(pkg):
    d = dump_weights.dump(pkg)
    idx = ConstIndex()
    for w in d["weights"]:
        key = dump_weights.npz_key(w["program"], w["function"], w["name"])
        idx.add(w["program"], w["function"], w["name"], d["values"][key], w["consumers"])
    return idx, d


def _is_single_function_program(spec):
    return spec.WhichOneof("Type") == "mlProgram" and len(spec.mlProgram.functions) == 1


def decompressed_index(pkg, tmp_dir):
    """coremltools' decompression of every constexpr op of `pkg`.

    Returns (ConstIndex, how): how is "decompress_weights" when the public API was used (single
    function ML Program), else "WeightDecompressor" (the same pass applied to each pymil program
    directly: multifunction models, which decompress_weights refuses, and pipelines)."""
    from coremltools.optimize.coreml._quantization_passes import WeightDecompressor

    spec = read_spec(pkg)
    if _is_single_function_program(spec):
        with quiet():
            m = ct.models.MLModel(str(pkg), skip_model_load=True)
            dec = cto.decompress_weights(m)
            out = Path(tempfile.mkdtemp(dir=tmp_dir)) / "ct_decompressed.mlpackage"
            dec.save(str(out))
        idx, _ = const_index(out)
        return idx, "decompress_weights"
    with quiet():
        m = ct.models.MLModel(str(pkg), skip_model_load=True)
    idx = ConstIndex()
    for prog_path, pspec in dump_weights.iter_programs(m.get_spec()):
        prog = dump_weights.load_pymil(pspec, m.weights_dir)
        with quiet():
            WeightDecompressor(op_selector=lambda op: True).apply(prog)
        for fname, func in prog.functions.items():
            for op in dump_weights._pymil_ops(func):
                if op.op_type != "const":
                    continue
                val = op.outputs[0].val
                if not isinstance(val, np.ndarray):
                    continue
                idx.add(prog_path, fname, op.name, val, dump_weights._consumers(op.outputs[0]))
    return idx, "WeightDecompressor"


# --------------------------------------------------------------------------------------
# The palettized op chain of a weight
# --------------------------------------------------------------------------------------


def lut_info(proto_ops, pymil_fn_vars, output_name):
    """Describe the constexpr chain producing `output_name` in one function.

    proto_ops: {output name: proto op}; pymil_fn_vars: {var name: pymil Var} of the same function.
    Returns a dict: final_op (proto), lut_op (proto), form ("ios16" | "ios18"), pcs (bool),
    quantized_lut (bool), lut_shape, nbits (from the LUT length), cluster_dim, indices_dtype,
    lut_dense (the LUT op's own decompressed output, before any per-channel scale) or an "error".
    """
    final = proto_ops.get(output_name)
    if final is None:
        return {"error": f"no op produces {output_name!r}"}
    info = {"final_op": final, "pcs": False, "quantized_lut": False}
    lut_op = final
    if final.type == "constexpr_blockwise_shift_scale":
        data = final.inputs["data"].arguments[0] if "data" in final.inputs else None
        if data is None or data.WhichOneof("binding") != "name":
            return dict(info, error=f"{output_name}: constexpr_blockwise_shift_scale whose data is not bound by name")
        lut_op = proto_ops.get(data.name)
        info["pcs"] = True
    if lut_op is None or lut_op.type != "constexpr_lut_to_dense":
        return dict(info, error=f"{output_name}: produced by {final.type}, not a constexpr_lut_to_dense chain")
    info["lut_op"] = lut_op
    if len(lut_op.inputs) == 0:
        info["form"] = "ios16"
        lut_attr = lut_op.attributes.get("lut")
        if lut_attr is None or "indices" not in lut_op.attributes or "shape" not in lut_op.attributes:
            return dict(info, error=f"{output_name}: iOS16 constexpr_lut_to_dense without indices/lut/shape attributes")
        info["lut_shape"] = binding_dims(lut_attr.type)
        info["nbits"] = int(np.log2(info["lut_shape"][0]))
        info["cluster_dim"] = 1
        info["indices_dtype"] = "uint8"
    else:
        info["form"] = "ios18"
        lb = lut_op.inputs["lut"].arguments[0]
        if lb.WhichOneof("binding") == "value":
            info["lut_shape"] = binding_dims(lb.value.type)
        else:
            producer = proto_ops.get(lb.name)
            if producer is None:
                return dict(info, error=f"{output_name}: lut bound to unknown name {lb.name!r}")
            info["quantized_lut"] = producer.type == "constexpr_blockwise_shift_scale"
            info["lut_shape"] = binding_dims(producer.outputs[0].type)
        ib = lut_op.inputs["indices"].arguments[0]
        itype = ib.value.type if ib.WhichOneof("binding") == "value" else proto_ops[ib.name].outputs[0].type
        from coremltools.proto import MIL_pb2

        info["indices_dtype"] = MIL_pb2.DataType.Name(itype.tensorType.dataType).lower()
        info["nbits"] = int(np.log2(info["lut_shape"][-2]))
        info["cluster_dim"] = info["lut_shape"][-1]
    # The LUT op's own output, materialised by coremltools' op definitions.
    lut_out_name = lut_op.outputs[0].name
    var = pymil_fn_vars.get(lut_out_name)
    if var is None:
        return dict(info, error=f"{output_name}: pymil has no var {lut_out_name!r}")
    info["vector_axis"] = None
    if info["form"] == "ios18" and getattr(var.op, "vector_axis", None) is not None:
        info["vector_axis"] = int(var.op.vector_axis.val)
    info["lut_dense"] = materialize(var)
    return info


def materialize(var):
    if var.val is not None:
        return var.val
    op = var.op
    if op.op_type == "constexpr_lut_to_dense" and hasattr(op, "vector_axis"):
        # iOS18 form: inputs may come from other constexpr ops (quantized LUT).
        lut = materialize(op.lut)
        indices = materialize(op.indices)
        va = op.vector_axis.val if op.vector_axis is not None else None
        return op.decompress(indices, lut, va)
    if op.op_type == "constexpr_blockwise_shift_scale":
        data = materialize(op.data)
        offset = materialize(op.offset) if op.offset is not None else None
        return op.decompress(data, materialize(op.scale), offset)
    return op.materialized_val_inference()


def pymil_vars(pkg):
    """{(program, function): {var name: Var}} of every op output (nested blocks included)."""
    with quiet():
        m = ct.models.MLModel(str(pkg), skip_model_load=True)
    res = {}
    progs = {}
    for prog_path, pspec in dump_weights.iter_programs(m.get_spec()):
        prog = dump_weights.load_pymil(pspec, m.weights_dir)
        progs[prog_path] = prog
        for fname, func in prog.functions.items():
            d = {}
            for op in dump_weights._pymil_ops(func):
                for o in op.outputs:
                    d[o.name] = o
            res[(prog_path, fname)] = d
    return res, progs


def blocks_of(dense, lut_shape):
    """Split `dense` into the blocks that share one table (group counts = lut_shape[:rank])."""
    rank = dense.ndim
    groups = list(lut_shape[:rank]) if len(lut_shape) == rank + 2 else [1] * rank
    blocks = [dense]
    for axis, g in enumerate(groups):
        if g > 1:
            blocks = [piece for b in blocks for piece in np.split(b, g, axis=axis)]
    return blocks, groups


def distinct_entries(block, cluster_dim, vector_axis):
    if cluster_dim <= 1:
        return npcompat.distinct_count(block)
    v = np.moveaxis(block, vector_axis, -1)
    v = v.reshape(-1, v.shape[-1] // cluster_dim, cluster_dim).reshape(-1, cluster_dim)
    return npcompat.distinct_count(v, axis=0)


# --------------------------------------------------------------------------------------
# coremltools palettize_weights with a config dict
# --------------------------------------------------------------------------------------


def ct_op_config(d):
    """OpPalettizerConfig from our config dict (lut_dtype dropped: coremltools has no such key)."""
    if d is None:
        return None
    kw = {k: d[k] for k in CT_KEYS if k in d and d[k] is not None}
    if str(kw.get("mode", "kmeans")).lower() == "unique":
        kw.pop("nbits", None)
    return cto.OpPalettizerConfig(**kw)


def ct_optimization_config(config):
    """config: {"global_config": dict|None, "op_type_configs": {..}, "op_name_configs": {..}}."""
    return cto.OptimizationConfig(
        global_config=ct_op_config(config.get("global_config")),
        op_type_configs={k: ct_op_config(v) for k, v in (config.get("op_type_configs") or {}).items()},
        op_name_configs={k: ct_op_config(v) for k, v in (config.get("op_name_configs") or {}).items()},
    )


def ct_palettize(src_pkg, config, out_pkg):
    with quiet():
        m = ct.models.MLModel(str(src_pkg), skip_model_load=True)
        out = cto.palettize_weights(m, ct_optimization_config(config))
        out.save(str(out_pkg))
    return out_pkg


def ct_palettized_names(pkg):
    """{(program, function): {original const name}} that coremltools' pass replaced.

    coremltools names its ops "<const name>_palettized" (+ "_pcs" for the per-channel scale)."""
    res = {}
    for (prog, fn), ops in proto_op_index(pkg).items():
        s = set()
        for op in ops.values():
            n = op_name(op)
            # coremltools 9 may fold the per-channel scale into a quantized LUT, so the LUT op
            # can be "<name>_palettized_pcs" as well.
            if op.type == "constexpr_lut_to_dense" and "_palettized" in n:
                s.add(n[: n.rindex("_palettized")])
        res[(prog, fn)] = s
    return res


def resolved_configs(pkg, config):
    """{(program, function, const name): normalized config dict | None | "error: ..."} by coremltools."""
    cfg = ct_optimization_config(config)
    with quiet():
        m = ct.models.MLModel(str(pkg), skip_model_load=True)
    res = {}
    for prog_path, pspec in dump_weights.iter_programs(m.get_spec()):
        prog = dump_weights.load_pymil(pspec, m.weights_dir)
        for fname, func in prog.functions.items():
            for op in dump_weights._pymil_ops(func):
                if op.op_type != "const":
                    continue
                try:
                    c = cfg._get_const_op_config(op)
                    res[(prog_path, fname, op.name)] = normalize_ct_config(c)
                except Exception as e:  # conflicting consumers
                    res[(prog_path, fname, op.name)] = f"error: {e}"
    return res


def normalize_ct_config(c):
    if c is None:
        return None
    gran = c.granularity
    gran = gran.name.lower() if hasattr(gran, "name") else str(gran).lower()
    return {
        "mode": str(c.mode).lower(),
        "nbits": c.nbits,
        "granularity": gran,
        "group_size": c.group_size,
        "channel_axis": c.channel_axis,
        "cluster_dim": c.cluster_dim,
        "enable_per_channel_scale": bool(c.enable_per_channel_scale),
        "weight_threshold": c.weight_threshold,
    }


def sse_and_max(dec, orig):
    d = dec.astype(np.float64) - orig.astype(np.float64)
    return float(np.sum(d * d)), float(np.max(np.abs(d))) if d.size else 0.0


def decompressed_const(ct_idx, how, rec, orig, label, error):
    """The const `rec` (a const_index record) as coremltools decompresses the output, or None.

    Reports through error(message) when it is missing, renamed, or not of orig's dtype and shape.
    """
    m, ctv = ct_idx.find(rec)
    if ctv is None:
        error(f"{label}: not found in coremltools' decompression ({how}) of the output")
        return None
    if m != rec["name"]:
        error(f"{label}: coremltools' decompressed const is named {m!r} (our op should keep the const's name)")
    if ctv.dtype != orig.dtype or ctv.shape != orig.shape:
        error(f"{label}: decompresses to {ctv.dtype}{list(ctv.shape)}, original {orig.dtype}{list(orig.shape)}")
        return None
    return ctv


def check_reported_error(w, ctv, orig, label, error):
    """The report entry w's sse and max_abs_error against coremltools' decompression ctv of the
    original orig; returns the recomputed (sse, max_abs_error)."""
    sse, mx = sse_and_max(ctv, orig)
    rs, rm = w.get("sse"), w.get("max_abs_error")
    if not isinstance(rs, (int, float)) or abs(rs - sse) > 1e-9 * max(abs(sse), 1e-300):
        error(f"{label}: report sse={rs!r}, recomputed from coremltools' decompression {sse!r}")
    if rm != mx:
        error(f"{label}: report max_abs_error={rm!r}, recomputed {mx!r}")
    return sse, mx


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[0] != "sse":
        print(__doc__)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        orig, _ = const_index(argv[1])
        dec, how = decompressed_index(argv[2], tmp)
        for (prog, fn), d in orig.by_fn.items():
            for name, (val, cons) in d["name"].items():
                rec = {"program": prog, "function": fn, "name": name, "consumers": cons}
                m, v = dec.find(rec, (name + "_palettized_pcs", name + "_palettized"))
                if v is None or v.shape != val.shape:
                    continue
                s, mx = sse_and_max(v, val)
                if s > 0:
                    print(f"{prog + '/' if prog else ''}{fn}/{name}\tsse={s:.9g}\tmax_abs={mx:.9g}\t({how}: {m})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
