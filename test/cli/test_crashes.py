"""Issue 12, crashes C1, C3 and C4: inputs that once ended palettize with a signal or an uncaught
exception (exit 134/139), or with exit 0 and an output inspect refuses.

C1: paths that are not UTF-8 make every JSON output valid JSON, each invalid byte written as the
    text \\xHH (docs/format.md, "Text in JSON"), exactly Python's "backslashreplace".
C3/C4: crafted constexpr chains are refused by decompress and compare with exit 2 and one stderr
    line naming the model file and the op; decompress writes nothing, compare prints no report."""
import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from coremltools.proto import MIL_pb2, Model_pb2

import checkpoint_files as ck

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = pathlib.Path(os.environ.get("FIXTURES_DIR", ROOT / "build/fixtures"))
SOURCE = FIXTURES / "linear_fp32.mlpackage"  # float32 lin_weight_0 [128, 64] feeding a linear
MODEL = "Data/com.apple.CoreML/model.mlmodel"
WEIGHT = "lin_weight_0"
ODD = os.fsdecode(b"odd-\xff\xfe")  # a folder name that is not UTF-8


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, timeout=120)


def ok(bin_, *args):
    r = run(bin_, *args)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r


def escaped(path):
    """How the JSON outputs spell a path: its bytes, invalid UTF-8 bytes as \\xHH."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


# --- C1 -----------------------------------------------------------------------------------------

@pytest.fixture
def odd(tmp_path):
    folder = tmp_path / ODD
    folder.mkdir()
    shutil.copytree(SOURCE, folder / "in.mlpackage")
    return folder


def test_C1_inspect_json(palettize_bin, odd):
    doc = json.loads(ok(palettize_bin, "inspect", "--json", odd / "in.mlpackage").stdout)
    assert doc["model"]["path"] == escaped(odd / "in.mlpackage")
    assert "\\xff\\xfe" in doc["model"]["path"]


def test_C1_compress_report_and_compare_json(palettize_bin, odd):
    report = odd / "report.json"
    ok(palettize_bin, "compress", odd / "in.mlpackage", "-o", odd / "out.mlpackage", "--report", report,
       "--weight-threshold", "0", "-q")
    doc = json.loads(report.read_bytes())
    assert doc["input"] == escaped(odd / "in.mlpackage")
    assert doc["output"] == escaped(odd / "out.mlpackage")
    doc = json.loads(ok(palettize_bin, "compare", "--json", odd / "in.mlpackage", odd / "out.mlpackage").stdout)
    assert doc["original"] == escaped(odd / "in.mlpackage")
    assert doc["compressed"] == escaped(odd / "out.mlpackage")
    assert any(w["state"] == "palettized" for w in doc["weights"])


def test_C1_checkpoint_report(palettize_bin, tmp_path):
    folder = tmp_path / ODD
    folder.mkdir()
    rng = np.random.default_rng(0)
    ck.write(folder / "m.safetensors", {"layer.weight": rng.normal(size=(64, 64)).astype(np.float32)})
    report = tmp_path / "report.json"
    ok(palettize_bin, "compress", folder / "m.safetensors", "-o", folder / "o.safetensors", "--report", report, "-q")
    doc = json.loads(report.read_bytes())
    assert doc["input"] == escaped(folder / "m.safetensors")
    assert doc["output"] == escaped(folder / "o.safetensors")


def test_C1_batch_report(palettize_bin, odd, tmp_path):
    report = tmp_path / "batch.json"
    out = tmp_path / ODD / "zoo"
    ok(palettize_bin, "compress", odd, "--output-dir", out, "--report", report, "--weight-threshold", "0", "-q")
    doc = json.loads(report.read_bytes())
    assert [m["input"] for m in doc["models"]] == [escaped(odd / "in.mlpackage")]
    assert [m["output"] for m in doc["models"]] == [escaped(out / "in.mlpackage")]


# --- C3, C4: crafted constexpr chains -----------------------------------------------------------

def compressed(palettize_bin, tmp_path, name, *flags):
    out = tmp_path / f"{name}.mlpackage"
    ok(palettize_bin, "compress", SOURCE, "-o", out, "--weight-threshold", "0", "-q", *flags)
    return out


def spec_of(pkg):
    spec = Model_pb2.Model()
    spec.ParseFromString((pkg / MODEL).read_bytes())
    return spec


def ops_of(spec):
    block = next(iter(spec.mlProgram.functions["main"].block_specializations.values()))
    return block.operations


def op_named(spec, name):
    for op in ops_of(spec):
        if op.attributes["name"].immediateValue.tensor.strings.values[0] == name:
            return op
    raise KeyError(name)


def tensor_value(dtype, dims, ints=None, floats=None):
    """An immediate tensor value of `dims` holding `ints` or `floats` (possibly fewer than dims say)."""
    v = MIL_pb2.Value()
    v.type.tensorType.dataType = dtype
    v.type.tensorType.rank = len(dims)
    for d in dims:
        v.type.tensorType.dimensions.add().constant.size = d
    if ints is not None:
        v.immediateValue.tensor.ints.values.extend(ints)
    if floats is not None:
        v.immediateValue.tensor.floats.values.extend(floats)
    return v


def bind_value(op, name, value):
    arg = op.inputs[name]
    del arg.arguments[:]
    arg.arguments.add().value.CopyFrom(value)


def ios16(bin_, tmp_path):
    return compressed(bin_, tmp_path, "ios16")


def ios18(bin_, tmp_path):
    """int8 LUT (shift/scale -> LUT) with vectors of 2 and a per-channel scale (LUT -> shift/scale)."""
    return compressed(bin_, tmp_path, "ios18", "--nbits", "4", "--cluster-dim", "2", "--lut-dtype", "int8",
                      "--per-channel-scale")


def offset_empty(spec):
    bind_value(op_named(spec, WEIGHT), "offset", tensor_value(MIL_pb2.FLOAT32, [0, 0], floats=[]))
    return f"constexpr_blockwise_shift_scale '{WEIGHT}'", "offset shape"


def offset_one(spec):
    bind_value(op_named(spec, WEIGHT), "offset", tensor_value(MIL_pb2.FLOAT32, [1, 1], floats=[0.5]))
    return f"constexpr_blockwise_shift_scale '{WEIGHT}'", "offset shape"


def empty_vector_axis(spec):
    bind_value(op_named(spec, WEIGHT + "_palettized"), "vector_axis", tensor_value(MIL_pb2.INT32, [0], ints=[]))
    return f"constexpr_lut_to_dense '{WEIGHT}_palettized'", "vector_axis: rank 1, expected 0"


def feeds_itself(spec):
    op = op_named(spec, WEIGHT)
    arg = op.inputs["data"]
    del arg.arguments[:]
    arg.arguments.add().name = op.outputs[0].name
    # decompress sees it in block order; compare meets it evaluating the weight.
    return (f"constexpr_blockwise_shift_scale '{WEIGHT}'",
            {"decompress": f"input 'data' names '{WEIGHT}', which no op before it defines", "compare": "feeds itself"})


def shape_attr(spec, dtype, values):
    op = op_named(spec, WEIGHT)
    op.attributes["shape"].CopyFrom(tensor_value(dtype, [len(values)], ints=values))
    return f"constexpr_lut_to_dense '{WEIGHT}'"


def shape_minus_one(spec):
    return shape_attr(spec, MIL_pb2.INT32, [-1]), "shape: dimension -1 is not a size"


def shape_overflows(spec):
    # 65536^4 = 2^64 wraps to 0 in 64 bits.
    return shape_attr(spec, MIL_pb2.INT32, [65536] * 4), "does not fit in 64 bits"


def shape_disagrees(spec):
    # As many elements as the declared float32 [128, 64], in another shape.
    return shape_attr(spec, MIL_pb2.INT32, [64, 128]), "output declared float32 [128, 64], but its inputs make float32 [64, 128]"


C3 = {"offset_empty": (ios18, offset_empty), "offset_one_element": (ios18, offset_one),
      "ios16_shape_minus_one": (ios16, shape_minus_one), "empty_vector_axis": (ios18, empty_vector_axis),
      "chain_feeds_itself": (ios18, feeds_itself)}
C4 = {"lut_shape_overflows": (ios16, shape_overflows), "lut_shape_disagrees_with_type": (ios16, shape_disagrees)}


def crafted(bin_, tmp_path, make, damage):
    pkg = make(bin_, tmp_path)
    spec = spec_of(pkg)
    op, detail = damage(spec)
    (pkg / MODEL).write_bytes(spec.SerializeToString())
    return pkg, op, detail


def check_refused(bin_, tmp_path, pkg, op, detail):
    before = {p: p.read_bytes() for p in pkg.rglob("*") if p.is_file()}
    out = tmp_path / "out.mlpackage"
    for args in (["decompress", pkg, "-o", out], ["compare", SOURCE, pkg], ["compare", "--json", SOURCE, pkg]):
        r = run(bin_, *args)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 2, f"{args[0]}: exit {r.returncode}: {err}"
        assert err.count("\n") == 1 and err.startswith("palettize: "), err
        expected = detail if isinstance(detail, str) else detail[args[0]]
        assert f"{pkg / MODEL}: {op}: " in err and expected in err, err
        assert r.stdout == b"", r.stdout
        assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith("out.mlpackage")]
    assert {p: p.read_bytes() for p in pkg.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("case", C3, ids=[f"C3_{c}" for c in C3])
def test_C3_crafted_chain_refused(palettize_bin, tmp_path, case):
    check_refused(palettize_bin, tmp_path, *crafted(palettize_bin, tmp_path, *C3[case]))


@pytest.mark.parametrize("case", C4, ids=[f"C4_{c}" for c in C4])
def test_C4_lut_shape_refused(palettize_bin, tmp_path, case):
    check_refused(palettize_bin, tmp_path, *crafted(palettize_bin, tmp_path, *C4[case]))


def test_C3_C4_untouched_chains_still_decompress(palettize_bin, tmp_path):
    """The same packages, undamaged: decompress exits 0 and inspect reads what it wrote."""
    for make in (ios16, ios18):
        pkg = make(palettize_bin, tmp_path)
        out = tmp_path / f"d-{pkg.name}"
        ok(palettize_bin, "decompress", pkg, "-o", out)
        ok(palettize_bin, "inspect", out)
        ok(palettize_bin, "compare", SOURCE, pkg)
