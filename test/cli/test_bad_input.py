"""Bad input: every malformed package gets one clear line naming the file and field, exit 1-3,
no crash, and nothing written."""
import struct
import subprocess

import pytest
from coremltools.proto import Model_pb2

MODEL = "Data/com.apple.CoreML/model.mlmodel"
WEIGHTS = "Data/com.apple.CoreML/weights/weight.bin"
W1 = "model_Dense1_weight_to_fp16"  # float16 [800, 784], the first blob (metadata at 64)


def run(bin_, *args):
    return subprocess.run([bin_, *map(str, args)], capture_output=True, text=True, timeout=60)


def spec_of(pkg):
    spec = Model_pb2.Model()
    spec.ParseFromString((pkg / MODEL).read_bytes())
    return spec


def const_val(spec, name):
    for op in spec.mlProgram.functions["main"].block_specializations["CoreML5"].operations:
        if op.type == "const" and op.attributes["name"].immediateValue.tensor.strings.values[0] == name:
            return op
    raise KeyError(name)


def patch_bin(pkg, offset, fmt, value):
    data = bytearray((pkg / WEIGHTS).read_bytes())
    struct.pack_into(fmt, data, offset, value)
    (pkg / WEIGHTS).write_bytes(bytes(data))


def expect(bin_, pkg, code, message, tmp_path, resave_bin):
    """inspect fails with `message`; resave fails the same way and writes nothing."""
    r = run(bin_, "inspect", pkg)
    assert r.returncode == code, r.stderr
    assert r.stdout == ""
    assert r.stderr == f"palettize: {message}\n"
    out = tmp_path / "out.mlpackage"
    r = run(resave_bin, pkg, out)
    assert r.returncode != 0 and r.returncode < 128, r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("out.mlpackage")]
    assert leftovers == [], f"output left behind: {leftovers}"


def test_missing_package(palettize_bin, tmp_path):
    r = run(palettize_bin, "inspect", tmp_path / "nope.mlpackage")
    assert r.returncode == 3
    assert r.stderr == f"palettize: {tmp_path}/nope.mlpackage: no such package\n"


def test_not_a_folder(palettize_bin, tmp_path):
    f = tmp_path / "file.mlpackage"
    f.write_text("x")
    r = run(palettize_bin, "inspect", f)
    assert r.returncode == 2
    assert r.stderr == f"palettize: {f}: not an .mlpackage folder\n"


def test_usage_errors(palettize_bin, mnist):
    r = run(palettize_bin, "inspect", mnist, "--weight-threshold", "many")
    assert r.returncode == 1
    assert "--weight-threshold" in r.stderr
    r = run(palettize_bin, "frobnicate")
    assert r.returncode == 1
    r = run(palettize_bin, "--help")
    assert r.returncode == 0 and "Exit codes" in r.stdout


def test_missing_manifest(palettize_bin, resave_bin, mnist, tmp_path):
    (mnist / "Manifest.json").unlink()
    expect(palettize_bin, mnist, 2, f"{mnist}/Manifest.json: missing", tmp_path, resave_bin)


def test_invalid_json(palettize_bin, resave_bin, mnist, tmp_path):
    (mnist / "Manifest.json").write_text('{"fileFormatVersion": "1.0.0",\n "itemInfoEntries": {,}}')
    expect(palettize_bin, mnist, 2,
           f"{mnist}/Manifest.json: invalid JSON: parse error at line 2, column 22: syntax error "
           "while parsing object key - unexpected ','; expected string literal", tmp_path, resave_bin)


def test_manifest_names_missing_file(palettize_bin, resave_bin, mnist, tmp_path):
    (mnist / MODEL).unlink()
    expect(palettize_bin, mnist, 2,
           f"{mnist}/Manifest.json: itemInfoEntries.9F624361-37AD-4C00-9B8B-D4BCA9EB055B.path: "
           "'com.apple.CoreML/model.mlmodel' does not exist in the package", tmp_path, resave_bin)


def test_invalid_protobuf(palettize_bin, resave_bin, mnist, tmp_path):
    (mnist / MODEL).write_bytes(b"\xff\xff\xff\xff garbage")
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{MODEL}: not a valid Core ML model (protobuf parse failed)", tmp_path, resave_bin)


def test_missing_weight_file(palettize_bin, resave_bin, mnist, tmp_path):
    (mnist / WEIGHTS).unlink()
    expect(palettize_bin, mnist, 2, f"{mnist}/{WEIGHTS}: missing (named by {mnist}/{MODEL})",
           tmp_path, resave_bin)


def test_truncated_weight_file(palettize_bin, resave_bin, mnist, tmp_path):
    data = (mnist / WEIGHTS).read_bytes()
    (mnist / WEIGHTS).write_bytes(data[:1000])
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{WEIGHTS}: blob at offset 64: size 1254400 past end of file (1000 bytes)",
           tmp_path, resave_bin)


def test_wrong_version(palettize_bin, resave_bin, mnist, tmp_path):
    patch_bin(mnist, 4, "<I", 1)
    expect(palettize_bin, mnist, 2, f"{mnist}/{WEIGHTS}: header: version 1, expected 2",
           tmp_path, resave_bin)


def test_wrong_sentinel(palettize_bin, resave_bin, mnist, tmp_path):
    patch_bin(mnist, 64, "<I", 0xCAFEF00D)
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{WEIGHTS}: blob at offset 64: sentinel 0xCAFEF00D, expected 0xDEADBEEF",
           tmp_path, resave_bin)


def test_blob_dtype_disagrees(palettize_bin, resave_bin, mnist, tmp_path):
    patch_bin(mnist, 68, "<I", 2)  # fp32
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{WEIGHTS}: blob at offset 64: dtype float32 does not match const '{W1}' "
           "(float16 [800, 784])", tmp_path, resave_bin)


def test_blob_size_disagrees(palettize_bin, resave_bin, mnist, tmp_path):
    patch_bin(mnist, 72, "<Q", 1000)
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{WEIGHTS}: blob at offset 64: size 1000 bytes, but const '{W1}' "
           "(float16 [800, 784]) needs 1254400", tmp_path, resave_bin)


def test_offset_past_end(palettize_bin, resave_bin, mnist, tmp_path):
    spec = spec_of(mnist)
    const_val(spec, W1).attributes["val"].blobFileValue.offset = 1 << 40
    (mnist / MODEL).write_bytes(spec.SerializeToString())
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{WEIGHTS}: blob at offset 1099511627776: metadata past end of file "
           "(1272340 bytes)", tmp_path, resave_bin)


@pytest.mark.parametrize("dims,message", [
    ([1 << 40, 1 << 40], "type: float16 [1099511627776, 1099511627776] has too many elements"),
])
def test_absurd_dimensions(palettize_bin, resave_bin, mnist, tmp_path, dims, message):
    spec = spec_of(mnist)
    op = const_val(spec, W1)
    for t in (op.outputs[0].type.tensorType, op.attributes["val"].type.tensorType):
        for d, size in zip(t.dimensions, dims):
            d.constant.size = size
    (mnist / MODEL).write_bytes(spec.SerializeToString())
    expect(palettize_bin, mnist, 2, f"{mnist}/{MODEL}: function 'main': const '{W1}': output {message}",
           tmp_path, resave_bin)


def test_large_dimensions_disagree_with_blob(palettize_bin, resave_bin, mnist, tmp_path):
    spec = spec_of(mnist)
    op = const_val(spec, W1)
    for t in (op.outputs[0].type.tensorType, op.attributes["val"].type.tensorType):
        t.dimensions[0].constant.size = 1 << 30
    (mnist / MODEL).write_bytes(spec.SerializeToString())
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{WEIGHTS}: blob at offset 64: size 1254400 bytes, but const '{W1}' "
           "(float16 [1073741824, 784]) needs 1683627180032", tmp_path, resave_bin)


def test_val_type_disagrees_with_output(palettize_bin, resave_bin, mnist, tmp_path):
    spec = spec_of(mnist)
    op = const_val(spec, W1)
    op.outputs[0].type.tensorType.dataType = 11  # FLOAT32
    (mnist / MODEL).write_bytes(spec.SerializeToString())
    expect(palettize_bin, mnist, 2,
           f"{mnist}/{MODEL}: function 'main': const '{W1}': val type float16 [800, 784] "
           "disagrees with output type float32 [800, 784]", tmp_path, resave_bin)


def test_input_unchanged_and_output_refused_when_present(palettize_bin, resave_bin, mnist, tmp_path):
    before = {p: p.read_bytes() for p in mnist.rglob("*") if p.is_file()}
    out = tmp_path / "out.mlpackage"
    assert run(resave_bin, mnist, out).returncode == 0
    r = run(resave_bin, mnist, out)
    assert r.returncode == 2 and r.stderr == f"resave: {out}: already exists (use overwrite to replace it)\n"
    r = run(resave_bin, mnist, mnist)
    assert r.returncode == 2 and r.stderr == f"resave: {mnist}: the output is the input; write to another path\n"
    after = {p: p.read_bytes() for p in mnist.rglob("*") if p.is_file()}
    assert before == after


def test_progress_bar_only_on_a_terminal(palettize_bin, mnist, tmp_path):
    """The progress bar is for people: never in a pipe or a log; on a terminal it shows."""
    r = run(palettize_bin, "compress", mnist, "-o", tmp_path / "a.mlpackage")
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr and "ETA" not in r.stderr
    assert r.stderr.startswith("palettized 2 weights (3 skipped)")
    r = run(palettize_bin, "compress", mnist, "-o", tmp_path / "q.mlpackage", "-q")
    assert r.returncode == 0 and r.stderr == ""
    # On a pseudo-terminal (util-linux `script`), the bar is drawn.
    import shutil
    if shutil.which("script") is None:
        pytest.skip("util-linux script is not installed")
    cmd = f"{palettize_bin} compress {mnist} -o {tmp_path / 't.mlpackage'}"
    t = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60)
    assert t.returncode == 0, t.stdout
    assert "2/2 weights" in t.stdout and "ETA" in t.stdout


def test_report_into_missing_folder_is_refused_before_any_work(palettize_bin, mnist, tmp_path):
    out = tmp_path / "out.mlpackage"
    report = tmp_path / "no" / "such" / "r.json"
    r = run(palettize_bin, "compress", mnist, "-o", out, "--report", report)
    assert r.returncode == 3
    assert r.stderr == f"palettize: {report}: cannot write report: no folder {report.parent}\n"
    assert not out.exists()


def test_zero_size_weight_is_skipped(palettize_bin, mnist, tmp_path):
    """A const with a zero-size dimension (an empty immediate value) is valid: compress leaves it
    as it is, with the reason, and palettizes the rest."""
    spec = spec_of(mnist)
    op = const_val(spec, W1)
    for t in (op.outputs[0].type.tensorType, op.attributes["val"].type.tensorType):
        t.dimensions[0].constant.size = 0
    val = op.attributes["val"]
    val.ClearField("blobFileValue")
    val.immediateValue.tensor.bytes.values = b""
    (mnist / MODEL).write_bytes(spec.SerializeToString())
    out, report = tmp_path / "out.mlpackage", tmp_path / "r.json"
    r = run(palettize_bin, "compress", mnist, "-o", out, "--weight-threshold", "0", "--report", report)
    assert r.returncode == 0, r.stderr
    import json
    weights = {w["name"]: w for w in json.loads(report.read_text())["weights"]}
    assert weights[W1]["status"] == "skipped" and weights[W1]["shape"] == [0, 784], weights[W1]
    assert "0 elements" in weights[W1]["reason"], weights[W1]["reason"]
    assert sum(w["status"] == "palettized" for w in weights.values()) >= 1
    r = run(palettize_bin, "inspect", out)
    assert r.returncode == 0, r.stderr
    assert W1 in r.stdout and "0x784" in r.stdout
