#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz harnesses (test/fuzz/*_fuzz.cc) from real packages.

    make_corpus.py OUT CONFIG_DIR PACKAGE_OR_FOLDER... [--constexpr-only PACKAGE_OR_FOLDER...]

Writes OUT/<harness>/<seed> for every harness: each package's weight.bin files (blob_reader),
Manifest.json (manifest), the package as an archive (ml_program; compress, with a few option
bytes; constexpr, when its model holds constexpr ops, i.e. it is compressed; eval, alone and with
an inputs.npz record of its multi-array inputs), and every YAML file
of CONFIG_DIR (config), and a few small .npz files (npz). A folder that is not itself a package stands
for every *.mlpackage in it. Packages after --constexpr-only (many compressed variants of the
same models) seed only the constexpr harness, so the others' corpora stay small. Standard library
only: it runs before the venv exists."""
import hashlib
import io
import pathlib
import struct
import sys
import zipfile

SMALL = 128 << 10     # larger packages go into the archives without their weight files
BLOB_SEED = 64 << 10  # larger weight.bin files are cut to their first 4 KiB
# compress options bytes (compress_fuzz.cc): kmeans 6-bit, 4-bit, 1-bit, grouped 4-bit, unique,
# uniform, cluster_dim 2, per-channel scale + int8 LUT on iOS18.
OPTION_BYTES = [0x04, 0x03, 0x00, 0x0B, 0x07, 0x06, 0x13, 0xE3]


def archive(pkg, with_weights):
    out = b""
    for f in sorted(p for p in pkg.rglob("*") if p.is_file()):
        rel = f.relative_to(pkg).as_posix()
        if not with_weights and f.suffix == ".bin":
            continue
        data = f.read_bytes()
        out += struct.pack("<H", len(rel)) + rel.encode() + struct.pack("<I", len(data)) + data
    return out


def put(out, harness, name, data):
    folder = out / harness
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{hashlib.sha1(data).hexdigest()[:12]}").write_bytes(data)


def npy(descr, shape, data, version=1):
    """An .npy array as numpy writes it: magic, version, header length, padded dict, data."""
    dims = ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}"
    lead = 10 if version == 1 else 12
    header += " " * ((64 - (lead + len(header) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode() + data


def npz_seeds(out):
    """.npz files like numpy's savez (stored, zip64 extras) and savez_compressed (deflate)."""
    arrays = {
        "x": npy("<f4", (2, 3), struct.pack("<6f", *range(6))),
        "ids": npy("<i8", (4,), struct.pack("<4q", 1, 2, 3, 4)),
        "mask": npy("|b1", (), b"\x01", version=2),
        "h": npy("<f2", (1, 2), b"\x00\x3c\x00\xc0", version=3),
    }
    for name, method in (("stored", zipfile.ZIP_STORED), ("deflated", zipfile.ZIP_DEFLATED)):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", method) as z:
            for key, data in arrays.items():
                with z.open(key + ".npy", "w", force_zip64=True) as f:
                    f.write(data)
        put(out, "npz", name, buf.getvalue())


def fields(buf):
    """(field number, wire type, value) of a protobuf message: an int for varints, bytes otherwise."""
    at = 0

    def varint():
        nonlocal at
        v = shift = 0
        while True:
            b = buf[at]
            at += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return v
    while at < len(buf):
        key = varint()
        wire = key & 7
        if wire == 0:
            yield key >> 3, wire, varint()
        elif wire == 2:
            n = varint()
            yield key >> 3, wire, buf[at:at + n]
            at += n
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
            yield key >> 3, wire, buf[at:at + n]
            at += n
        else:
            return


# Model.proto's ArrayFeatureType.ArrayDataType -> .npy descr, element size, a value's packing.
ARRAY_DTYPES = {65568: ("<f4", "f"), 65600: ("<f8", "d"), 131104: ("<i4", "i"), 65552: ("<f2", "e")}


def inputs_npz(model):
    """An .npz holding each multi-array input of `model` (model.mlmodel bytes) at its declared
    shape, values 0, 1, 2, ... (model.description.input[k].type.multiArrayType; others left out)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for f, _, desc in fields(model):
            if f != 2:
                continue
            for g, _, feature in fields(desc):
                if g != 1:
                    continue
                name, array = None, None
                for h, _, v in fields(feature):
                    if h == 1:
                        name = v.decode("utf-8", "replace")
                    elif h == 3:
                        array = next((v2 for i, _, v2 in fields(v) if i == 5), None)
                if name is None or array is None:
                    continue
                shape, dtype = [], 65568
                for i, wire, v in fields(array):
                    if i == 1 and wire == 0:
                        shape.append(v)
                    elif i == 1 and wire == 2:
                        shape += unpack_varints(v)  # packed
                    elif i == 2:
                        dtype = v
                if dtype not in ARRAY_DTYPES:
                    continue
                descr, fmt = ARRAY_DTYPES[dtype]
                n = 1
                for d in shape:
                    n *= d
                if n > 1 << 16:
                    continue
                data = struct.pack(f"<{n}{fmt}", *[(k % 7) for k in range(n)])
                z.writestr(name + ".npy", npy(descr, tuple(shape), data))
    return buf.getvalue()


def unpack_varints(v):
    out, at = [], 0
    while at < len(v):
        x = shift = 0
        while True:
            b = v[at]
            at += 1
            x |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        out.append(x)
    return out


def record(path, data):
    """One record of a package archive (fuzz_package.h)."""
    return struct.pack("<H", len(path)) + path.encode() + struct.pack("<I", len(data)) + data


def packages(args):
    for a in map(pathlib.Path, args):
        if (a / "Manifest.json").is_file():
            yield a
        elif a.is_dir():
            yield from sorted(a.glob("*.mlpackage"))


def has_constexpr(pkg):
    return any(b"constexpr_" in m.read_bytes() for m in pkg.rglob("*.mlmodel"))


def main():
    out, configs, *sources = sys.argv[1:]
    out = pathlib.Path(out)
    only = []
    if "--constexpr-only" in sources:
        at = sources.index("--constexpr-only")
        sources, only = sources[:at], sources[at + 1:]
    for pkg in packages(only):
        if has_constexpr(pkg) and sum(f.stat().st_size for f in pkg.rglob("*.bin")) <= SMALL:
            put(out, "constexpr", pkg.name.removesuffix(".mlpackage"), archive(pkg, True))
    for pkg in packages(sources):
        name = pkg.name.removesuffix(".mlpackage")
        put(out, "manifest", "Manifest", (pkg / "Manifest.json").read_bytes())
        size = 0
        for w in sorted(pkg.rglob("*.bin")):
            data = w.read_bytes()
            size += len(data)
            put(out, "blob_reader", name, data if len(data) <= BLOB_SEED else data[:4096])
        small = size <= SMALL
        put(out, "ml_program", name, archive(pkg, small))
        if small:
            model = (pkg / "Data/com.apple.CoreML/model.mlmodel").read_bytes()
            put(out, "eval", name, archive(pkg, True))
            put(out, "eval", name + "-inputs", archive(pkg, True) + record("inputs.npz", inputs_npz(model)))
            for b in OPTION_BYTES:
                put(out, "compress", f"{name}-{b:02x}", bytes([b]) + archive(pkg, True))
            if has_constexpr(pkg):
                put(out, "constexpr", name, archive(pkg, True))
    for c in sorted(pathlib.Path(configs).glob("*.yaml")):
        put(out, "config", c.stem, c.read_bytes())
    npz_seeds(out)


if __name__ == "__main__":
    main()
