"""coremltools side of scripts/bench; each subcommand runs in its own process, so its time and
memory are measured on their own. Prints one JSON object on stdout.

  build85m  --out PATH [--layers 12 --hidden 768 --ffn 3072 --seed 0]
      Writes the transformer-shaped fp16 "85M" package with the MIL builder (iOS18, FLOAT16).
  buildlinear --out PATH --rows R --cols C --precision float32|float16
      Writes one linear layer whose [R, C] weight is scripts/bench's model T values (numpy
      default_rng(42), Student-t(4) x 0.02, as float32), iOS16, compute_precision FLOAT32 or FLOAT16.
  palettize --model IN --out OUT --config a|b|c
      Loads IN (skip_model_load), runs palettize_weights with num_kmeans_workers=2, saves OUT.
      Reports its phase times and peak RSS: its own, and the largest k-means worker's.
  sse       --original IN --compressed OUT
      decompress_weights(OUT), then the float64 SSE against IN of every linear/conv/matmul weight,
      keyed by the consuming op's name. Reads weights through np.memmap, one at a time.
"""
import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "oracle"))
import npcompat  # noqa: E402,F401  (before numpy: NPY_DISABLE_CPU_FEATURES)
import numpy as np  # noqa: E402

CONFIGS = {  # the same configs scripts/bench gives palettize
    "a": dict(mode="kmeans", nbits=6, granularity="per_tensor"),
    "b": dict(mode="kmeans", nbits=4, granularity="per_grouped_channel", group_size=16),
    "c": dict(mode="kmeans", nbits=8, granularity="per_tensor"),
    "v4": dict(mode="kmeans", nbits=4, granularity="per_tensor", cluster_dim=2),
    "v8": dict(mode="kmeans", nbits=8, granularity="per_grouped_channel", group_size=32, cluster_dim=2),
    "v4d4": dict(mode="kmeans", nbits=4, granularity="per_tensor", cluster_dim=4),
    "v8d4": dict(mode="kmeans", nbits=8, granularity="per_grouped_channel", group_size=32, cluster_dim=4),
    "v4d8": dict(mode="kmeans", nbits=4, granularity="per_tensor", cluster_dim=8),
}


def maxrss_bytes(who):
    return resource.getrusage(who).ru_maxrss * 1024  # Linux reports KiB


def build85m(args):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    rng = np.random.default_rng(args.seed)
    h, f = args.hidden, args.ffn

    def weight(rows, cols):  # Student-t, 4 degrees of freedom, scaled like trained weights
        return (rng.standard_t(4, size=(rows, cols)) * 0.02).astype(np.float16)

    layers = [[(n, weight(*s)) for n, s in (("q_proj", (h, h)), ("k_proj", (h, h)),
                                             ("v_proj", (h, h)), ("o_proj", (h, h)),
                                             ("up_proj", (f, h)), ("down_proj", (h, f)))]
              for _ in range(args.layers)]

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, h), dtype=types.fp16)],
                opset_version=ct.target.iOS18)
    def prog(x):
        for i, layer in enumerate(layers):
            for name, w in layer:
                x = mb.linear(x=x, weight=w, name=f"layers_{i}_{name}")
        return x

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                       compute_precision=ct.precision.FLOAT16)
    model.save(args.out)
    params = sum(w.size for layer in layers for _, w in layer)
    print(json.dumps({"out": args.out, "params": int(params)}))


def buildlinear(args):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    w = (np.random.default_rng(42).standard_t(4, size=(args.rows, args.cols)) * 0.02).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, args.cols), dtype=types.fp32)],
                opset_version=ct.target.iOS16)
    def prog(x):
        return mb.linear(x=x, weight=w, name="linear")

    precision = {"float32": ct.precision.FLOAT32, "float16": ct.precision.FLOAT16}[args.precision]
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=precision)
    model.save(args.out)
    print(json.dumps({"out": args.out, "params": int(w.size)}))


def palettize(args):
    t0 = time.perf_counter()
    import coremltools as ct
    import coremltools.optimize.coreml as cto
    from coremltools.optimize.coreml import _quantization_passes as qp

    t1 = time.perf_counter()
    model = ct.models.MLModel(args.model, skip_model_load=True)
    t2 = time.perf_counter()
    config = cto.OptimizationConfig(
        global_config=cto.OpPalettizerConfig(num_kmeans_workers=2, **CONFIGS[args.config]))
    compressed = cto.palettize_weights(model, config)
    t3 = time.perf_counter()
    compressed.save(args.out)
    t4 = time.perf_counter()
    # The k-means pool lives until exit; end it here so its workers count in RUSAGE_CHILDREN
    # (coremltools' own atexit hook then terminates an already finished pool).
    pool = qp.palettize_weights._compress_pool
    if pool is not None:
        pool.close()
        pool.join()
    print(json.dumps({
        "import_s": t1 - t0, "load_s": t2 - t1, "palettize_s": t3 - t2, "save_s": t4 - t3,
        "total_s": t4 - t0, "coremltools": ct.__version__,
        "peak_rss_self": maxrss_bytes(resource.RUSAGE_SELF),
        "peak_rss_largest_worker": maxrss_bytes(resource.RUSAGE_CHILDREN),
    }))


class Blobs:
    """The weight consumed by each op of a package's main function, read through np.memmap."""

    DTYPES = {10: np.float16, 11: np.float32}  # MIL DataType -> numpy (coreml-format.md 3)

    def __init__(self, package):
        import coremltools as ct

        self.spec = ct.utils.load_spec(package)
        self.bin = os.path.join(package, "Data", "com.apple.CoreML", "weights", "weight.bin")
        self.map = np.memmap(self.bin, dtype=np.uint8, mode="r") if os.path.exists(self.bin) else None
        fn = self.spec.mlProgram.functions["main"]
        block = fn.block_specializations[fn.opset]
        consts = {}
        self.by_consumer = {}
        for op in block.operations:
            if op.type == "const":
                consts[op.outputs[0].name] = op
        for op in block.operations:
            key = "weight" if op.type in ("linear", "conv") else "y" if op.type == "matmul" else None
            if key is not None and key in op.inputs:
                name = op.inputs[key].arguments[0].name
                if name in consts:
                    self.by_consumer[op.attributes["name"].immediateValue.tensor.strings.values[0]] = consts[name]

    def read(self, const_op):
        val = const_op.attributes["val"]
        tt = val.type.tensorType
        shape = [d.constant.size for d in tt.dimensions]
        dtype = self.DTYPES[tt.dataType]
        if val.HasField("blobFileValue"):
            meta = int(val.blobFileValue.offset)
            size = int(self.map[meta + 8:meta + 16].view(np.uint64)[0])
            data = int(self.map[meta + 16:meta + 24].view(np.uint64)[0])
            return self.map[data:data + size].view(dtype).reshape(shape)
        raw = val.immediateValue.tensor
        if raw.HasField("bytes"):
            return np.frombuffer(raw.bytes.values, dtype=dtype).reshape(shape)
        return np.asarray(raw.floats.values, dtype=dtype).reshape(shape)


def sse(args):
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    tmp = tempfile.mkdtemp(prefix="bench-decompressed-", dir=os.path.dirname(os.path.abspath(args.compressed)))
    try:
        decompressed = cto.decompress_weights(ct.models.MLModel(args.compressed, skip_model_load=True))
        path = os.path.join(tmp, "d.mlpackage")
        decompressed.save(path)
        del decompressed
        original, ours = Blobs(args.original), Blobs(path)
        result = {}
        for op_name, const in original.by_consumer.items():
            if op_name not in ours.by_consumer:
                continue
            a = original.read(const)
            b = ours.read(ours.by_consumer[op_name])
            total = 0.0
            rows = max(1, (1 << 22) // max(1, a[0].size))  # ~4M elements at a time
            for r in range(0, a.shape[0], rows):
                d = a[r:r + rows].astype(np.float64) - b[r:r + rows].astype(np.float64)
                total += float(np.dot(d.ravel(), d.ravel()))
            result[op_name] = {"sse": total, "elements": int(a.size)}
        print(json.dumps({"weights": result}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build85m")
    b.add_argument("--out", required=True)
    b.add_argument("--layers", type=int, default=12)
    b.add_argument("--hidden", type=int, default=768)
    b.add_argument("--ffn", type=int, default=3072)
    b.add_argument("--seed", type=int, default=0)
    bl = sub.add_parser("buildlinear")
    bl.add_argument("--out", required=True)
    bl.add_argument("--rows", type=int, required=True)
    bl.add_argument("--cols", type=int, required=True)
    bl.add_argument("--precision", required=True, choices=["float32", "float16"])
    c = sub.add_parser("palettize")
    c.add_argument("--model", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--config", required=True, choices=sorted(CONFIGS))
    s = sub.add_parser("sse")
    s.add_argument("--original", required=True)
    s.add_argument("--compressed", required=True)
    args = p.parse_args()
    {"build85m": build85m, "buildlinear": buildlinear, "palettize": palettize, "sse": sse}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
