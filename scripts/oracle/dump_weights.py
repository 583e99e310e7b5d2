#!/usr/bin/env python3
"""Dump every tensor const of a Core ML package, as coremltools sees it (the test oracle).

Usage:
    dump_weights.py PACKAGE [--out FILE.npz] [--json]

The package is opened with ``ct.models.MLModel(path, skip_model_load=True)``.  Every ML Program
in it is converted to pymil with coremltools' own milproto loader
(``coremltools.converters.mil.frontend.milproto.load.load``), the same loader that
``coremltools.optimize.coreml.get_weights_metadata`` uses.  All functions of a multifunction
program are walked, and every block including nested blocks (cond/while_loop bodies).

Program paths ("program" field / npz key prefix):
    ""                                         the root model is an ML Program
    "pipeline.models[i]"                       i-th model of a root Pipeline
    "pipelineClassifier.pipeline.models[i]"    i-th model of a root PipelineClassifier
    "pipelineRegressor.pipeline.models[i]"     i-th model of a root PipelineRegressor
    nested pipelines join with ".", e.g. "pipeline.models[1].pipeline.models[0]"

For every ``const`` op whose value is a numpy ndarray (rank >= 1; scalars are excluded,
exactly like get_weights_metadata's ``isinstance(val, np.ndarray)`` test) one record:
    program, function, name (the op's "name" attribute), output (its output var name),
    dtype (numpy name: float16, float32, int32, ...), shape, elements, bytes (ndarray.nbytes),
    storage ("blob" | "immediate", read from the protobuf), blob ({"file", "offset"} of the
    blobFileValue or null; consts sharing one blob are deduplicated weights),
    unique_values (distinct values, as len(np.unique); float16 counted by bit pattern),
    sparsity (fraction of |x| <= 1e-12, computed like get_weights_metadata),
    consumers: [{op_type, op_name, input}], one per (consumer op, input name) binding the
    const's output; ops in nested blocks count.

pymil quirk handled here: when a non-const op in the protobuf omits an optional input, the
pymil loader materialises the default as a NEW const op (named "<op>_<input>"), and
immediate-value bindings of non-const ops (classifier labels) also become new consts.  Those
do not exist in the file, so only pymil consts whose output name matches a ``const`` op of the
protobuf function are reported.

--json prints {"model": {...}, "weights": [...]} to stdout.
--out writes every value into an .npz keyed "[program/]function/name"
(program prefix only when program != "").
"""

import argparse
import contextlib
import io
import json
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import npcompat  # noqa: E402,F401  (before numpy: NPY_DISABLE_CPU_FEATURES)
import numpy as np  # noqa: E402

warnings.filterwarnings("ignore")

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    # coremltools prints "Failed to load _MLModelProxy" noise on Linux.
    import coremltools as ct  # noqa: E402
    from coremltools.converters.mil.frontend.milproto import load as _milproto_to_pymil  # noqa: E402

SPARSITY_EPS = 1e-12


# --------------------------------------------------------------------------------------
# Protobuf side
# --------------------------------------------------------------------------------------

_PIPELINE_FIELDS = {
    "pipeline": ("pipeline.models", lambda s: s.pipeline.models),
    "pipelineClassifier": (
        "pipelineClassifier.pipeline.models",
        lambda s: s.pipelineClassifier.pipeline.models,
    ),
    "pipelineRegressor": (
        "pipelineRegressor.pipeline.models",
        lambda s: s.pipelineRegressor.pipeline.models,
    ),
}


def _join(prefix, part):
    return part if not prefix else prefix + "." + part


def iter_programs(spec, prefix=""):
    """Yield (program_path, Model spec) for every ML Program in `spec`, depth first."""
    kind = spec.WhichOneof("Type")
    if kind == "mlProgram":
        yield prefix, spec
    elif kind in _PIPELINE_FIELDS:
        base, getter = _PIPELINE_FIELDS[kind]
        for i, sub in enumerate(getter(spec)):
            yield from iter_programs(sub, _join(prefix, f"{base}[{i}]"))


def _walk_ops(block):
    """Every op of a block, nested blocks included: protobuf Blocks and pymil Blocks both name
    them `operations` and `blocks`, so one walk serves both."""
    for op in block.operations:
        yield op
        for b in op.blocks:
            yield from _walk_ops(b)


_proto_ops = _walk_ops


def _proto_consts(func_spec):
    """output name -> {"name", "storage"} for every const op of a protobuf function."""
    res = {}
    block = func_spec.block_specializations[func_spec.opset]
    for op in _proto_ops(block):
        if op.type != "const":
            continue
        val = op.attributes["val"]
        which = val.WhichOneof("value")
        storage = {"blobFileValue": "blob", "immediateValue": "immediate"}.get(which, which)
        name = op.attributes["name"].immediateValue.tensor.strings.values[0]
        blob = None
        if which == "blobFileValue":
            blob = {"file": val.blobFileValue.fileName, "offset": int(val.blobFileValue.offset)}
        for out in op.outputs:
            res[out.name] = {"name": name, "storage": storage, "blob": blob}
    return res


# --------------------------------------------------------------------------------------
# pymil side
# --------------------------------------------------------------------------------------


_pymil_ops = _walk_ops


def _consumers(var):
    res = []
    seen = set()
    for child in var.child_ops:
        if id(child) in seen:
            continue
        seen.add(id(child))
        for k, v in child.inputs.items():
            if v is var or (isinstance(v, (list, tuple)) and any(x is var for x in v)):
                res.append({"op_type": child.op_type, "op_name": child.name, "input": k})
    return res


def sparsity_of(val):
    # Same expression as CoreMLWeightMetaData._get_sparsity.
    return float(np.sum(np.abs(val) <= SPARSITY_EPS) / val.size)


def load_pymil(program_spec, weights_dir):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return _milproto_to_pymil.load(
            model_spec=program_spec,
            specification_version=program_spec.specificationVersion,
            file_weights_dir=weights_dir or "",
        )


def dump(path, keep_values=True):
    """Return {"model": {...}, "weights": [...], "values": {npz_key: ndarray}}."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
    spec = mlmodel.get_spec()
    weights_dir = mlmodel.weights_dir
    model_info = {
        "path": str(path),
        "specification_version": spec.specificationVersion,
        "type": spec.WhichOneof("Type"),
        "programs": [],
    }
    weights = []
    values = {}
    for prog_path, pspec in iter_programs(spec):
        funcs = pspec.mlProgram.functions
        model_info["programs"].append(
            {
                "path": prog_path,
                "specification_version": pspec.specificationVersion,
                "functions": [{"name": n, "opset": f.opset} for n, f in funcs.items()],
            }
        )
        prog = load_pymil(pspec, weights_dir)
        for fname, func in prog.functions.items():
            proto_consts = _proto_consts(funcs[fname])
            for op in _pymil_ops(func):
                if op.op_type != "const":
                    continue
                var = op.outputs[0]
                val = var.val
                if not isinstance(val, np.ndarray):
                    continue
                if var.name not in proto_consts:
                    continue  # synthesised by the pymil loader, not in the file
                pinfo = proto_consts[var.name]
                assert pinfo["name"] == op.name, (pinfo, op.name)
                rec = {
                    "program": prog_path,
                    "function": fname,
                    "name": op.name,
                    "output": var.name,
                    "dtype": val.dtype.name,
                    "shape": [int(d) for d in val.shape],
                    "elements": int(val.size),
                    "bytes": int(val.nbytes),
                    "storage": pinfo["storage"],
                    "blob": pinfo["blob"],  # {"file", "offset"} of the blob, or None
                    "unique_values": npcompat.distinct_count(val),
                    "sparsity": sparsity_of(val) if val.size and val.dtype.kind in "biuf" else 0.0,
                    "consumers": _consumers(var),
                }
                weights.append(rec)
                if keep_values:
                    key = npz_key(prog_path, fname, op.name)
                    assert key not in values, f"duplicate const {key}"
                    values[key] = val
    return {"model": model_info, "weights": weights, "values": values}


def npz_key(program, function, name):
    return f"{program}/{function}/{name}" if program else f"{function}/{name}"


def write_npz(values, path):
    """Write {npz_key: ndarray} to `path` (np.savez, uncompressed, exact bytes)."""
    with open(path, "wb") as f:
        np.savez(f, **values)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("package")
    ap.add_argument("--out", help="write all const values into this .npz")
    ap.add_argument("--json", action="store_true", help="print the records as JSON")
    args = ap.parse_args(argv)
    res = dump(args.package, keep_values=bool(args.out))
    if args.out:
        write_npz(res["values"], args.out)
    if args.json:
        json.dump({"model": res["model"], "weights": res["weights"]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif not args.out:
        for w in res["weights"]:
            print(
                f"{npz_key(w['program'], w['function'], w['name'])}\t{w['dtype']}\t{w['shape']}\t"
                f"{w['storage']}\tunique={w['unique_values']}\tsparsity={w['sparsity']:.4f}\t"
                + ",".join(f"{c['op_type']}:{c['op_name']}.{c['input']}" for c in w["consumers"])
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
