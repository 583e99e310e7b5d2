"""save_palettized(model, path): a finalized model's state_dict as a `--packed` safetensors
(docs/format.md section 9): each finalized weight X becomes X.lut, X.indices and, with a
per-channel scale, X.scale (int8 tables, lut_dtype "i8": X.lut holds the integers and
X.lut_scale one scale per table), described by __metadata__["palettize.X"]; every other tensor is
stored as it is. `palettize compress MODEL.mlpackage OUT --tables FILE` turns the tables into
LUT ops (README, "From DKM to Core ML")."""

import json

import numpy as np
import torch

from .dkm_weight import decode

_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
           torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
           torch.bool: "BOOL"}


def _bytes(t):
    t = t.detach().cpu().contiguous()
    return t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()


def pack_bits(indices, nbits):
    """LSB-first packing: index i in bits [i*nbits, (i+1)*nbits)."""
    idx = np.asarray(indices, dtype=np.uint16)
    bits = ((idx[:, None] >> np.arange(nbits, dtype=np.uint16)) & 1).astype(np.uint8)
    return np.packbits(bits.reshape(-1), bitorder="little").tobytes()


def write_safetensors(path, tensors, metadata):
    """tensors: [(name, dtype name, shape, bytes)] written in order, contiguous from offset 0."""
    header = {"__metadata__": metadata}
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for _, _, _, data in tensors:
            f.write(data)


def save_palettized(model, path):
    """Writes `model` (finalized by DKMPalettizer.finalize) to `path`. A finalized weight whose
    values no longer decode from its tables (changed since finalize) is an error naming it."""
    tables = {f"{name}.weight" if name else "weight": m._palettize_table
              for name, m in model.named_modules() if hasattr(m, "_palettize_table")}
    tensors, metadata = [], {"palettize.version": "1"}
    for key, value in model.state_dict().items():
        if value.dtype not in _DTYPES:
            raise ValueError(f"{key}: dtype {value.dtype} cannot be stored in safetensors")
        table = tables.get(key)
        if table is None:
            tensors.append((key, _DTYPES[value.dtype], value.shape, _bytes(value)))
            continue
        shape = tuple(value.shape)
        G, D, nbits = table["group_size"], table["cluster_dim"], table["n_bits"]
        lut, indices, scale = table["lut"], table["indices"], table["scale"]
        if lut.dtype != value.dtype or not torch.equal(decode(lut, indices, scale, shape, G, D), value):
            raise ValueError(f"{key}: its values are not its tables' (changed since finalize?)")
        # Indices in row-major order of the shape with channels / D: table_points' order per table,
        # and tables follow one another along the channels.
        T, K = lut.shape[0], lut.shape[1]
        lut_shape = (T,) + (1,) * (len(shape) - 1) + (K, D)
        int8 = table.get("int8")
        if int8 is None:
            tensors.append((key + ".lut", _DTYPES[value.dtype], lut_shape, _bytes(lut)))
        else:  # section 9's quantized form: the integers, and one scale per table
            q, lut_scale = int8
            tensors.append((key + ".lut", "I8", lut_shape, _bytes(q)))
            tensors.append((key + ".lut_scale", _DTYPES[value.dtype], lut_shape[:-2] + (1, 1),
                            _bytes(lut_scale)))
        packed = pack_bits(indices.numpy(), nbits)
        tensors.append((key + ".indices", "U8", (len(packed),), packed))
        if scale is not None:
            tensors.append((key + ".scale", _DTYPES[value.dtype], tuple(scale.shape), _bytes(scale)))
        metadata["palettize." + key] = json.dumps({
            "dtype": _DTYPES[value.dtype], "shape": list(shape), "nbits": nbits, "channel_axis": 0,
            "group_size": G, "cluster_dim": D, "lut_dtype": "float" if int8 is None else "int8", "per_channel_scale": scale is not None})
    write_safetensors(path, tensors, metadata)
