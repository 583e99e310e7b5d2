"""Corrupted packages campaign: randomly damaged copies of the real models (../shared/models) and
the coremltools fixtures, each compressed with a timeout. Every run must end with exit 0 and an
output that `inspect` reads, or a clean refusal (exit 1, 2 or 3, one line on stderr, nothing at
the output path): never a signal or a timeout, and the input byte-identical afterwards.

Seeded, so a failure reproduces: PALETTIZE_CORRUPT_CASES (default 300) cases from
PALETTIZE_CORRUPT_SEED (default 1); each case's damage is printed when it fails."""
import hashlib
import json
import os
import pathlib
import random
import shutil
import struct
import subprocess

import pytest
from coremltools.proto import Model_pb2

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("SHARED_MODELS", ROOT.parent / "shared/models"))
FIXTURES = pathlib.Path(os.environ.get("FIXTURES_DIR", ROOT / "build/fixtures"))
CASES = int(os.environ.get("PALETTIZE_CORRUPT_CASES", "300"))
SEED = int(os.environ.get("PALETTIZE_CORRUPT_SEED", "1"))
MODEL = "Data/com.apple.CoreML/model.mlmodel"
OPTIONS = [[], ["--nbits", "4"], ["--nbits", "2", "--granularity", "per_grouped_channel", "--group-size", "4"],
           ["--mode", "unique"], ["--mode", "uniform", "--nbits", "8"], ["--cluster-dim", "2", "--nbits", "4"],
           ["--lut-dtype", "int8", "--per-channel-scale"]]


def sources():
    """Every package, smallest first (the small ones are cheap to compress many times)."""
    found = [p for d in (SHARED, FIXTURES) for p in d.glob("*.mlpackage")]
    return sorted(found, key=lambda p: (sum(f.stat().st_size for f in p.rglob("*") if f.is_file()), p.name))


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# Each damage takes (rng, package) and returns what it did, for the failure message.

def flip_bytes(rng, pkg):
    f = rng.choice([p for p in pkg.rglob("*") if p.is_file() and p.stat().st_size > 0])
    data = bytearray(f.read_bytes())
    for _ in range(rng.choice([1, 1, 2, 8, 64])):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    f.write_bytes(bytes(data))
    return f"flipped bits in {f.relative_to(pkg)}"


def truncate(rng, pkg):
    f = rng.choice([p for p in pkg.rglob("*") if p.is_file()])
    size = f.stat().st_size
    keep = rng.choice([0, rng.randrange(size + 1), size - 1, 64, 128])
    keep = max(0, min(keep, size))
    f.write_bytes(f.read_bytes()[:keep])
    return f"cut {f.relative_to(pkg)} to {keep} of {size} bytes"


def delete_file(rng, pkg):
    f = rng.choice([p for p in pkg.rglob("*") if p.is_file()])
    f.unlink()
    return f"deleted {f.relative_to(pkg)}"


def lie_in_weights(rng, pkg):
    """A field of the weight.bin header or of a blob record set to a lie."""
    f = rng.choice(sorted(pkg.rglob("*.bin")) or [pkg / MODEL])
    data = bytearray(f.read_bytes())
    if len(data) < 128:
        return truncate(rng, pkg)
    records = [64]
    while len(records) < 64:  # walk the chain of records
        o = records[-1]
        if o + 64 > len(data):
            break
        size, offset = struct.unpack_from("<QQ", data, o + 8)
        nxt = (offset + size + 63) // 64 * 64
        if nxt <= o or nxt + 64 > len(data):
            break
        records.append(nxt)
    rec = rng.choice(records)
    field, fmt = rng.choice([(0, "<I"), (4, "<I"), (rec, "<I"), (rec + 4, "<I"), (rec + 8, "<Q"),
                             (rec + 16, "<Q"), (rec + 24, "<Q")])
    width = struct.calcsize(fmt) * 8
    (old,) = struct.unpack_from(fmt, data, field)
    value = rng.choice([0, 1, old + 1, old - 1 if old else 1, old + 64, old * 2, len(data), len(data) - 1,
                        (1 << width) - 1, (1 << (width - 1)), rng.getrandbits(width)]) % (1 << width)
    struct.pack_into(fmt, data, field, value)
    f.write_bytes(bytes(data))
    return f"{f.relative_to(pkg)}: field at byte {field} {old} -> {value}"


def damage_manifest(rng, pkg):
    f = pkg / "Manifest.json"
    try:
        doc = json.loads(f.read_text())
        entries = doc["itemInfoEntries"]
        key = rng.choice(list(entries))
    except (OSError, ValueError, KeyError, IndexError, TypeError):  # damaged already
        return flip_bytes(rng, pkg)
    what = rng.randrange(9)
    if what == 0:
        del doc["rootModelIdentifier"]
    elif what == 1:
        doc["rootModelIdentifier"] = rng.choice(["nope", 7, None, key])
    elif what == 2:
        entries[key]["path"] = rng.choice(["../../etc/passwd", "/abs", "", "com.apple.CoreML",
                                           "com.apple.CoreML/weights/weight.bin", "a/../../b", 3])
    elif what == 3:
        del entries[key]
    elif what == 4:
        doc["fileFormatVersion"] = rng.choice(["2.0.0", "1.0", "x", 1, "1.0.0.0", "-1.0.0"])
    elif what == 5:
        doc["itemInfoEntries"] = rng.choice([[], "x", None, {}])
    elif what == 6:
        entries[key] = rng.choice([[], "x", None, {"path": None}])
    elif what == 7:
        text = f.read_text()
        f.write_text(text[:rng.randrange(len(text))])
        return "Manifest.json cut short"
    else:
        entries["extra"] = {"path": rng.choice(["com.apple.CoreML", "missing", "com.apple.CoreML/model.mlmodel"])}
    f.write_text(json.dumps(doc))
    return f"Manifest.json damage {what} on {key}"


def damage_model(rng, pkg):
    """A change at the protobuf level: a weight's type, shape or blob reference, or an op's
    attribute, so the file still parses and the damage reaches the walker and the weight checks."""
    f = pkg / MODEL
    if not f.is_file():
        return flip_bytes(rng, pkg)
    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(f.read_bytes())
    except Exception:  # damaged already: protobuf's DecodeError
        return flip_bytes(rng, pkg)
    consts = []

    def walk(block):
        for op in block.operations:
            if op.type == "const":
                consts.append(op)
            for b in op.blocks:
                walk(b)

    programs = [spec] + [m for m in spec.pipeline.models] + [m for m in spec.pipelineClassifier.pipeline.models]
    for m in programs:
        for fn in m.mlProgram.functions.values():
            for block in fn.block_specializations.values():
                walk(block)
    if not consts:
        return flip_bytes(rng, pkg)
    op = rng.choice(consts)
    val = op.attributes["val"]
    what = rng.randrange(10)
    tensors = [op.outputs[0].type.tensorType, val.type.tensorType] if op.outputs else [val.type.tensorType]
    if what == 0 and val.HasField("blobFileValue"):
        val.blobFileValue.offset = rng.choice([0, 1, 63, val.blobFileValue.offset + 64, 1 << 62, (1 << 64) - 64])
    elif what == 1 and val.HasField("blobFileValue"):
        val.blobFileValue.fileName = rng.choice(["", "@model_path/../x.bin", "/etc/passwd", "@model_path/weights",
                                                 "@model_path/weights/nope.bin", "@model_path/"])
    elif what == 2:
        for t in tensors:
            t.dataType = rng.choice([0, 1, 4, 8, 9, 10, 11, 14, 21, 22, 23, 24, 25, 999])
    elif what == 3:
        for t in tensors:
            if t.dimensions:
                t.dimensions[rng.randrange(len(t.dimensions))].constant.size = rng.choice(
                    [0, 1, 3, 1 << 20, 1 << 32, (1 << 64) - 1])
    elif what == 4:
        for t in tensors:
            t.rank = rng.choice([0, t.rank + 1, 9])
    elif what == 5:
        del op.attributes["val"]
    elif what == 6:
        t = rng.choice(tensors)
        if t.dimensions:
            t.dimensions[0].unknown.variadic = False
    elif what == 7:
        op.outputs.add().name = op.outputs[0].name + "_2" if op.outputs else "x"
    elif what == 8 and val.HasField("immediateValue"):
        val.immediateValue.tensor.floats.values.append(1.0)
    else:
        op.type = rng.choice(["constexpr_lut_to_dense", "linear", "const"])
    f.write_bytes(spec.SerializeToString())
    return f"model.mlmodel damage {what} on const {op.attributes['name'].immediateValue.tensor.strings.values[:1]}"


DAMAGE = [flip_bytes, flip_bytes, truncate, delete_file, lie_in_weights, lie_in_weights, damage_manifest,
          damage_model, damage_model, damage_model]


@pytest.fixture(scope="module")
def packages():
    found = sources()
    assert found, f"no packages in {SHARED} or {FIXTURES}"
    return found


@pytest.mark.parametrize("case", range(CASES))
def test_corrupted_package(palettize_bin, packages, tmp_path, case):
    rng = random.Random(SEED * 1_000_003 + case)
    # Small packages most of the time; the larger real models one case in five.
    small = packages[:max(1, len(packages) - 2)]
    src = rng.choice(packages if rng.random() < 0.2 else small)
    pkg = tmp_path / src.name
    shutil.copytree(src, pkg)
    done = [rng.choice(DAMAGE)(rng, pkg) for _ in range(rng.choice([1, 1, 1, 2]))]
    before = digest(pkg)
    out = tmp_path / "out.mlpackage"
    options = rng.choice(OPTIONS)
    what = f"case {case} (seed {SEED}): {src.name}, {'; '.join(done)}, options {options}"
    try:
        r = subprocess.run([palettize_bin, "compress", str(pkg), "-o", str(out), "--threads", "1",
                            "--weight-threshold", "16", *options], capture_output=True, text=True,
                           errors="backslashreplace", timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out: {what}")
    assert r.returncode in (0, 1, 2, 3), f"exit {r.returncode} {r.stderr[-2000:]}: {what}"
    assert digest(pkg) == before, f"input changed: {what}"
    if r.returncode == 0:
        i = subprocess.run([palettize_bin, "inspect", str(out)], capture_output=True, text=True,
                           errors="backslashreplace", timeout=60)
        assert i.returncode == 0, f"output unreadable: {i.stderr}: {what}"
    else:
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("palettize: "), f"{r.stderr!r}: {what}"
        assert not [p for p in tmp_path.iterdir() if p.name.startswith("out.mlpackage")], f"left output: {what}"


def test_newline_in_a_name_stays_on_one_line(palettize_bin, mnist, tmp_path):
    """A name quoted from a damaged file is shown with its control characters escaped."""
    spec = Model_pb2.Model()
    spec.ParseFromString((mnist / MODEL).read_bytes())
    block = next(iter(spec.mlProgram.functions["main"].block_specializations.values()))
    op = next(o for o in block.operations if o.attributes["val"].HasField("blobFileValue"))
    op.attributes["val"].blobFileValue.fileName = "weights\nweight.bin"
    (mnist / MODEL).write_bytes(spec.SerializeToString())
    r = subprocess.run([palettize_bin, "inspect", str(mnist)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == (f"palettize: {mnist}/{MODEL}: blob file name 'weights\\x0Aweight.bin' does not "
                        "start with @model_path/\n")
