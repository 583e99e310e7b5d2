"""Bit allocation on checkpoints (issue 14, "checkpoints likewise (decoded by numpy)").

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv/bin/python -m pytest test/cli/test_allocation_checkpoint.py

test_checkpoint.py's BERT-like checkpoint (BF16, F16 and F32 weights) is compressed with an
allocation objective, dense and --packed. Read back with numpy alone (checkpoint_files.py, as
docs/format.md section 9 describes the packed form), every allocated weight holds what the report's
`allocation` section says was chosen: its SSE and SNR recomputed in float64 from the original and
the output equal the chosen candidate's, its packed tensors have the chosen nbits' table and index
sizes and take the candidate's bytes, and a weight kept uncompressed is the input's bytes. Each
candidate of the curve is then checked against a uniform run at its width, decoded the same way.
"""

import json
import math

import numpy as np
import pytest

import checkpoint_files as ck
from test_checkpoint import make_model, run

OBJECTIVES = {
    "bpw3": ["--target-bpw", "3"],
    "bpw12": ["--target-bpw", "12"],  # room for some weights to stay uncompressed
    "size": ["--target-size", "10K"],
    "snr": ["--min-snr", "20"],
    "grouped": ["--target-bpw", "4", "--granularity", "per_grouped_channel", "--group-size", "16"],
    # Groups of 4: an 8-bit table per 4 channels is not smaller than some weights uncompressed.
    "grouped4": ["--target-bpw", "5", "--granularity", "per_grouped_channel", "--group-size", "4"],
}


def numpy_errors(dtype, x, y):
    """(sse, snr_db) of output y against original x, in float64 on the stored values."""
    xs, ys = ck.as_float(dtype, x).astype(np.float64), ck.as_float(dtype, y).astype(np.float64)
    diff = xs - ys
    sse = float(np.sum(diff * diff))
    return sse, (10 * math.log10(float(np.sum(xs * xs)) / sse) if sse > 0 else None)


def stored_bytes(tensors, name):
    return sum(a.nbytes for key, (_, a) in tensors.items() if key.startswith(name + "."))


def check_packed_sizes(tensors, metadata, name, nbits, shape):
    """The packed tensors of `name` are those of an nbits table: K = 2^nbits entries per table,
    nbits bits per index."""
    m = json.loads(metadata["palettize." + name])
    assert m["nbits"] == nbits and m["shape"] == list(shape), name
    lut = tensors[name + ".lut"][1]
    assert lut.shape[-2] == 2 ** nbits and lut.shape[-1] == m["cluster_dim"], (name, lut.shape)
    tables = shape[m["channel_axis"]] // m["group_size"] if m["group_size"] else 1
    assert int(np.prod(lut.shape[:-2])) == tables, (name, lut.shape)
    indices = int(np.prod(shape)) // m["cluster_dim"]
    assert tensors[name + ".indices"][1].nbytes == (indices * nbits + 7) // 8, name


@pytest.mark.parametrize("objective", OBJECTIVES, ids=list(OBJECTIVES))
def test_allocated_checkpoint_decodes_to_the_reported_allocation(palettize_bin, tmp_path, objective):
    src = tmp_path / "m.safetensors"
    make_model(src)
    flags = OBJECTIVES[objective]
    run(palettize_bin, "compress", src, "-o", tmp_path / "d.safetensors", "--report", tmp_path / "d.json", *flags)
    run(palettize_bin, "compress", src, "-o", tmp_path / "p.safetensors", "--report", tmp_path / "p.json",
        "--packed", *flags)
    _, orig = ck.read(src)
    _, dense = ck.read(tmp_path / "d.safetensors")
    meta_p, packed = ck.read(tmp_path / "p.safetensors")
    report = json.loads((tmp_path / "d.json").read_text())
    preport = json.loads((tmp_path / "p.json").read_text())
    # Dense and packed outputs are charged the same stored bytes (the packed form's), so they
    # make the same allocation.
    a = report["allocation"]
    assert a == preport["allocation"]
    assert a["gap"] == 0
    by_name = {w["name"]: w for w in report["weights"]}
    total_bytes, elements, chosen_widths = 0, 0, set()
    for wa in a["weights"]:
        name = wa["name"]
        c = wa["candidates"][wa["chosen"]]
        dtype, x = orig[name]
        assert wa["elements"] == x.size, name
        elements += x.size
        total_bytes += c["bytes"]
        chosen_widths.add(c["nbits"])
        w = by_name[name]
        if c["nbits"] is None:  # kept uncompressed: the input's bytes, in both outputs
            assert w["status"] != "palettized", name
            assert c["bytes"] == x.nbytes and c["sse"] == 0, name
            assert dense[name][1].tobytes() == x.tobytes(), name
            assert packed[name][1].tobytes() == x.tobytes(), name
            assert "palettize." + name not in meta_p, name
            continue
        assert w["status"] == "palettized" and w["nbits"] == c["nbits"], name
        y = dense[name][1]
        assert ck.decode_packed(packed, meta_p, name).tobytes() == y.tobytes(), name
        sse, snr = numpy_errors(dtype, x, y)
        assert sse == pytest.approx(c["sse"], rel=1e-9, abs=1e-12), name
        assert w["sse"] == c["sse"], name
        assert c["snr_db"] is not None and snr == pytest.approx(c["snr_db"], abs=1e-9), name
        check_packed_sizes(packed, meta_p, name, c["nbits"], x.shape)
        assert stored_bytes(packed, name) == c["bytes"] == w["bytes_after"], name
        if objective == "snr":
            assert snr >= 20, name
            # The fewest bytes with that SNR: every smaller candidate falls short.
            assert all(o["snr_db"] < 20 for o in wa["candidates"] if o["bytes"] < c["bytes"]), name
    assert a["bytes"] == total_bytes and a["elements"] == elements
    assert a["bpw"] == pytest.approx(8 * total_bytes / elements, rel=1e-12)
    if flags[0] == "--target-bpw":
        assert a["bpw"] <= float(flags[1])
    if flags[0] == "--target-size":
        assert total_bytes <= 10 * 1024
    if objective == "bpw12":
        assert None in chosen_widths and len(chosen_widths) > 1, chosen_widths


@pytest.mark.parametrize("objective", ["bpw3", "grouped", "grouped4"])
def test_each_candidate_is_what_a_uniform_run_writes(palettize_bin, tmp_path, objective):
    """The curve the allocation chooses from: each candidate's sse, snr_db and bytes are those of
    a --packed run at its width, decoded with numpy."""
    src = tmp_path / "m.safetensors"
    make_model(src)
    flags = OBJECTIVES[objective]
    run(palettize_bin, "compress", src, "-o", tmp_path / "a.safetensors", "--report", tmp_path / "a.json",
        "--packed", *flags)
    a = json.loads((tmp_path / "a.json").read_text())["allocation"]
    _, orig = ck.read(src)
    base = flags[2:]  # the granularity flags, without the objective
    widths = sorted({c["nbits"] for wa in a["weights"] for c in wa["candidates"] if c["nbits"]})
    assert widths == [1, 2, 3, 4, 6, 8]  # a checkpoint has no deployment target: 3 bits too
    left_out = sum(len(wa["candidates"]) < len(widths) + 1 for wa in a["weights"])
    assert left_out == (2 if objective == "grouped4" else 0)
    for nbits in widths:
        out = tmp_path / f"u{nbits}.safetensors"
        run(palettize_bin, "compress", src, "-o", out, "--packed", "--nbits", nbits, *base)
        meta, tensors = ck.read(out)
        for wa in a["weights"]:
            name = wa["name"]
            cands = [c for c in wa["candidates"] if c["nbits"] == nbits]
            dtype, x = orig[name]
            if not cands:  # left out: not smaller uncompressed, where compress keeps it as it is
                assert tensors[name][1].tobytes() == x.tobytes() and "palettize." + name not in meta, (name, nbits)
                continue
            (c,) = cands
            sse, snr = numpy_errors(dtype, x, ck.decode_packed(tensors, meta, name))
            assert sse == pytest.approx(c["sse"], rel=1e-9, abs=1e-12), (name, nbits)
            assert snr == pytest.approx(c["snr_db"], abs=1e-9), (name, nbits)
            assert stored_bytes(tensors, name) == c["bytes"], (name, nbits)
