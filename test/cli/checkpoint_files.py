"""safetensors files for the checkpoint tests, with numpy only: writing (any dtype, BF16 as uint16
bit patterns), reading, bfloat16 rounding, and decoding a `compress --packed` tensor as
docs/format.md section 9 describes."""

import json
import struct
from pathlib import Path

import numpy as np

NUMPY = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": np.uint16, "U8": np.uint8,
         "I8": np.int8, "I64": np.int64}
NAMES = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
         np.dtype(np.uint8): "U8", np.dtype(np.int64): "I64"}


class BF16:
    """A bfloat16 tensor, held as its uint16 bit patterns."""

    def __init__(self, bits):
        self.bits = np.ascontiguousarray(bits, dtype=np.uint16)


def to_bf16(x):
    """float32 values -> BF16, rounded to nearest, ties to even."""
    b = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return BF16(((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16))


def bf16_values(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def write(path, tensors, metadata=None, header_text=None):
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, a in tensors.items():
        if isinstance(a, BF16):
            dtype, raw, shape = "BF16", a.bits.tobytes(), a.bits.shape
        else:
            a = np.ascontiguousarray(a)
            dtype, raw, shape = NAMES[a.dtype], a.tobytes(), a.shape
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    text = (header_text if header_text is not None else json.dumps(header)).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read(path):
    """(metadata, {name: (dtype, numpy array)}); BF16 arrays are uint16 bit patterns."""
    data = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    metadata = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        a = np.frombuffer(data[base + b:base + end], dtype=NUMPY[e["dtype"]]).reshape(e["shape"])
        tensors[name] = (e["dtype"], a)
    return metadata, tensors


def as_float(dtype, a):
    return bf16_values(a) if dtype == "BF16" else a


def round_to(dtype, x):
    """Exact products (float64) rounded once to `dtype`, as bit patterns of its storage type."""
    if dtype == "BF16":
        return to_bf16(x.astype(np.float32)).bits  # the products are exact in float32
    return x.astype(NUMPY[dtype])


def table(tensors, metadata, name):
    """The table entries of packed tensor `name` as it decodes them, [tables, K, D], in its
    storage type (quantized tables dequantized)."""
    m = json.loads(metadata["palettize." + name])
    dtype = m["dtype"]
    lut_dtype, lut = tensors[name + ".lut"]
    lut = lut.reshape(-1, lut.shape[-2], lut.shape[-1])
    if m["lut_dtype"] == "float":
        return lut
    sd, scale = tensors[name + ".lut_scale"]
    scale = as_float(sd, scale).astype(np.float64).reshape(-1, 1, 1)
    offset = tensors[name + ".lut_offset"][1].astype(np.float64).reshape(-1, 1, 1) \
        if m["lut_dtype"] == "uint8" else 0.0
    return round_to(dtype, scale * (lut.astype(np.float64) - offset))


def decode_packed(tensors, metadata, name):
    """The dense values of packed tensor `name`, in its storage type (BF16: uint16 bits)."""
    m = json.loads(metadata["palettize." + name])
    dtype, shape, nbits, axis = m["dtype"], m["shape"], m["nbits"], m["channel_axis"]
    g, d = m["group_size"], m["cluster_dim"]
    lut = as_float(dtype, table(tensors, metadata, name)).astype(np.float64)
    ishape = list(shape)
    ishape[axis] //= d
    count = int(np.prod(ishape))
    packed = tensors[name + ".indices"][1]
    bits = np.unpackbits(packed, bitorder="little")[:count * nbits].reshape(count, nbits)
    idx = (bits.astype(np.int64) << np.arange(nbits)).sum(axis=1).reshape(ishape)
    # Element p: idx at p with p[axis] // d, table p[axis] // g, vector component p[axis] % d.
    pos = np.indices(shape)
    c = pos[axis]
    iidx = tuple(pos[k] if k != axis else c // d for k in range(len(shape)))
    values = lut[c // g, idx[iidx], c % d]
    if m["per_channel_scale"]:
        sd, s = tensors[name + ".scale"]
        values = as_float(sd, s).astype(np.float64) * values  # broadcast over the channel axis
    return round_to(dtype, values)
