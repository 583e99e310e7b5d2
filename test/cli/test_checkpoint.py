"""`palettize compress model.safetensors`: Torch checkpoints.

Run from the repo root:
    PALETTIZE_BIN=build/apps/palettize/palettize .venv/bin/python -m pytest test/cli/test_checkpoint.py

A small checkpoint in the shape of a BERT-like model (BF16 embedding, F16/F32 linears, a conv,
biases, a norm, an integer buffer) is compressed dense and --packed under many configs. The dense
output keeps every other tensor and the header byte for byte and holds at most 2^nbits values per
table; the packed output, decoded with numpy as docs/format.md section 9 says, is the dense output
bit for bit; the report's errors are numpy's on the dense output. Bad inputs exit with their code
and one line, write nothing and leave the input unchanged.
"""

import json
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

import checkpoint_files as ck

TIMEOUT = 120


def run(bin_, *args, rc=0):
    proc = subprocess.run([bin_, *map(str, args)], capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == rc, proc.stderr.decode(errors="replace")
    return proc


def make_model(path, seed=0):
    rng = np.random.default_rng(seed)
    def clustered(shape):
        return (rng.integers(-3, 4, size=shape) * 0.25 + rng.normal(0, 0.03, size=shape))
    tensors = {
        "embeddings.word_embeddings.weight": ck.to_bf16(clustered((96, 64))),
        "encoder.layer.0.attention.self.query.weight": clustered((64, 64)).astype(np.float16),
        "encoder.layer.0.attention.self.query.bias": rng.normal(size=64).astype(np.float32),
        "encoder.layer.0.output.LayerNorm.weight": np.ones(64, np.float32),
        "encoder.layer.0.output.dense.weight": clustered((64, 128)).astype(np.float32),
        "conv.weight": clustered((32, 16, 3, 3)).astype(np.float32),
        "position_ids": np.arange(512, dtype=np.int64).reshape(1, 512),
    }
    ck.write(path, tensors, metadata={"format": "pt"})
    return tensors


CONFIGS = {
    "default": [],
    "4bit": ["--nbits", "4"],
    "grouped": ["--nbits", "3", "--granularity", "per_grouped_channel", "--group-size", "16"],
    "grouped_axis1": ["--nbits", "2", "--granularity", "per_grouped_channel", "--group-size", "16",
                      "--channel-axis", "1"],
    "vector": ["--nbits", "4", "--cluster-dim", "2"],
    "scale": ["--nbits", "2", "--per-channel-scale"],
    "int8": ["--nbits", "4", "--lut-dtype", "int8"],
    "uint8_scale": ["--nbits", "4", "--lut-dtype", "uint8", "--per-channel-scale"],
    "uniform": ["--mode", "uniform", "--nbits", "4"],
}


@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
def test_dense_and_packed(palettize_bin, tmp_path, config):
    src = tmp_path / "m.safetensors"
    make_model(src)
    before = src.read_bytes()
    flags = CONFIGS[config]
    run(palettize_bin, "compress", src, "-o", tmp_path / "d.safetensors", "--report", tmp_path / "d.json", *flags)
    run(palettize_bin, "compress", src, "-o", tmp_path / "p.safetensors", "--report", tmp_path / "p.json",
        "--packed", *flags)
    assert src.read_bytes() == before
    dense_bytes = (tmp_path / "d.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", before[:8])
    assert dense_bytes[:8 + n] == before[:8 + n]  # header and metadata byte for byte
    meta_in, orig = ck.read(src)
    _, dense = ck.read(tmp_path / "d.safetensors")
    meta_p, packed = ck.read(tmp_path / "p.safetensors")
    report = json.loads((tmp_path / "d.json").read_text())
    preport = json.loads((tmp_path / "p.json").read_text())
    assert report["format"] == "safetensors" and report["packed"] is False and preport["packed"] is True
    assert [w["name"] for w in report["weights"]] == list(orig)
    for w, pw in zip(report["weights"], preport["weights"]):
        for key in ("status", "nbits", "sse", "max_abs_error", "bytes_after"):
            assert w[key] == pw[key], (w["name"], key)
    assert meta_p["format"] == "pt" and meta_p["palettize.version"] == "1"
    palettized = [w for w in report["weights"] if w["status"] == "palettized"]
    assert len(palettized) >= 2, report
    for w in report["weights"]:
        name = w["name"]
        dtype, x = orig[name]
        if w["status"] != "palettized":
            assert dense[name][1].tobytes() == x.tobytes(), name
            assert packed[name][1].tobytes() == x.tobytes(), name
            continue
        assert name not in packed
        y = dense[name][1]
        assert ck.decode_packed(packed, meta_p, name).tobytes() == y.tobytes(), name
        xs, ys = ck.as_float(dtype, x).astype(np.float64), ck.as_float(dtype, y).astype(np.float64)
        diff = xs - ys
        assert np.sum(diff * diff) == pytest.approx(w["sse"], rel=1e-9, abs=1e-12), name
        assert np.max(np.abs(diff)) == w["max_abs_error"], name
        stored = sum(t[1].nbytes for k, t in packed.items() if k.startswith(name + "."))
        assert stored == w["bytes_after"], name
        m = json.loads(meta_p["palettize." + name])
        if not m["per_channel_scale"] and m["lut_dtype"] == "float":
            # Every dense value is a table entry of its group.
            lut = ck.as_float(dtype, packed[name + ".lut"][1]).astype(np.float64)
            assert set(np.unique(ys)) <= set(np.unique(lut)), name
    assert dict(meta_in) == {"format": "pt"}
    kept = {w["name"]: w["reason"] for w in report["weights"] if w["status"] != "palettized"}
    assert kept["encoder.layer.0.attention.self.query.bias"] == \
        "not a module weight (only tensors named '<module>.weight' are palettized)"
    assert kept["encoder.layer.0.output.LayerNorm.weight"] == "rank 1: 1-D tensors (norms, biases) are left uncompressed"
    modules = {w["name"]: (w["module"], w["module_type"]) for w in report["weights"]}
    assert modules["embeddings.word_embeddings.weight"] == ("embeddings.word_embeddings", "Embedding")
    assert modules["conv.weight"] == ("conv", "Conv2d")
    assert modules["position_ids"] == (None, None)


def test_unique_packs_a_dense_output_losslessly(palettize_bin, tmp_path):
    """A dense output (at most 2^nbits values per table) packs losslessly with --mode unique."""
    src = tmp_path / "m.safetensors"
    make_model(src)
    run(palettize_bin, "compress", src, "-o", tmp_path / "d.safetensors", "--nbits", "3")
    run(palettize_bin, "compress", tmp_path / "d.safetensors", "-o", tmp_path / "u.safetensors", "--mode", "unique",
        "--packed", "--report", tmp_path / "u.json")
    report = json.loads((tmp_path / "u.json").read_text())
    palettized = [w for w in report["weights"] if w["status"] == "palettized"]
    assert len(palettized) == 4
    assert all(w["sse"] == 0 and w["nbits"] <= 3 and w["snr_db"] is None for w in palettized)
    _, dense = ck.read(tmp_path / "d.safetensors")
    meta, packed = ck.read(tmp_path / "u.safetensors")
    for w in palettized:
        assert ck.decode_packed(packed, meta, w["name"]).tobytes() == dense[w["name"]][1].tobytes()


def test_same_output_for_any_thread_count(palettize_bin, tmp_path):
    src = tmp_path / "m.safetensors"
    make_model(src, seed=3)
    for packed in ([], ["--packed"]):
        outs = []
        for threads in (1, 3, 8):
            out = tmp_path / f"o{threads}{len(packed)}.safetensors"
            run(palettize_bin, "compress", src, "-o", out, "--threads", threads, "--nbits", "3", *packed)
            outs.append(out.read_bytes())
        assert outs[0] == outs[1] == outs[2]


def test_torch_config(palettize_bin, tmp_path):
    src = tmp_path / "m.safetensors"
    make_model(src)
    cfg = tmp_path / "torch.yaml"
    cfg.write_text("global_config: {n_bits: 2}\n"
                   "module_type_configs:\n  Embedding: null\n  Conv2d: {n_bits: 6}\n"
                   "module_name_configs:\n  encoder.layer.0: {n_bits: 8}\n"
                   "  encoder.layer.0.attention: {n_bits: 3, granularity: per_grouped_channel, group_size: 8}\n")
    run(palettize_bin, "compress", src, "-o", tmp_path / "o.safetensors", "--config", cfg, "--report", tmp_path / "r.json")
    w = {x["name"]: x for x in json.loads((tmp_path / "r.json").read_text())["weights"]}
    assert w["embeddings.word_embeddings.weight"]["reason"] == "skipped by config (module_type_configs.Embedding is null)"
    assert w["conv.weight"]["config_source"] == "module_type_configs.Conv2d" and w["conv.weight"]["nbits"] == 6
    q = w["encoder.layer.0.attention.self.query.weight"]
    assert q["config_source"] == "module_name_configs.encoder.layer.0.attention"
    assert (q["nbits"], q["luts"]) == (3, 8)
    d = w["encoder.layer.0.output.dense.weight"]
    assert (d["config_source"], d["nbits"]) == ("module_name_configs.encoder.layer.0", 8)
    # The flags override global_config only.
    run(palettize_bin, "compress", src, "-o", tmp_path / "f.safetensors", "--config", cfg, "--nbits", "4",
        "--report", tmp_path / "f.json")
    w = {x["name"]: x for x in json.loads((tmp_path / "f.json").read_text())["weights"]}
    assert w["conv.weight"]["nbits"] == 6


def test_sensitivity_by_name(palettize_bin, tmp_path):
    src = tmp_path / "m.safetensors"
    tensors = make_model(src)
    name = "encoder.layer.0.output.dense.weight"
    x = tensors[name]
    s = np.ones(x.shape, np.float32)
    heavy = [(1, 2), (10, 100), (33, 7)]
    for p in heavy:
        s[p] = 1e15
    sfile = tmp_path / "s.safetensors"
    ck.write(sfile, {name + ".sensitivity": s, "unrelated": np.zeros(3, np.float32)})
    run(palettize_bin, "compress", src, "-o", tmp_path / "w.safetensors", "--nbits", "2", "--sensitivity", sfile,
        "--report", tmp_path / "w.json")
    run(palettize_bin, "compress", src, "-o", tmp_path / "p.safetensors", "--nbits", "2", "--report", tmp_path / "p.json")
    rep = json.loads((tmp_path / "w.json").read_text())
    w = {r["name"]: r for r in rep["weights"]}
    assert w[name]["sensitivity"]["tensor"] == name + ".sensitivity"
    assert w[name]["sensitivity"]["match"] == "name"
    q = "encoder.layer.0.attention.self.query.weight"
    assert w[q]["sensitivity"]["note"] == f"no sensitivity tensor named '{q}' or '{q}.sensitivity': plain k-means"
    assert rep["sensitivity"]["unused"] == ["unrelated"]
    yw = ck.read(tmp_path / "w.safetensors")[1][name][1]
    yp = ck.read(tmp_path / "p.safetensors")[1][name][1]
    for p in heavy:
        assert yw[p] == x[p]
    assert sum(yp[p] == x[p] for p in heavy) < len(heavy)
    diff = x.astype(np.float64) - yw.astype(np.float64)
    assert np.sum(s.astype(np.float64) * diff * diff) == pytest.approx(w[name]["sensitivity"]["weighted_sse"], rel=1e-9)


def test_dry_run(palettize_bin, tmp_path):
    src = tmp_path / "m.safetensors"
    make_model(src)
    proc = run(palettize_bin, "compress", src, "--dry-run", "--nbits", "4")
    out = proc.stdout.decode()
    assert "conv.weight (Conv2d conv): kmeans 4-bit per_tensor (global_config)\n" in out
    assert "position_ids: keep: not a module weight" in out
    assert out.endswith("4 tensors to palettize, 3 kept\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


def truncated(path):
    data = path.read_bytes()
    path.write_bytes(data[:-100])


def lying(path):
    data = bytearray(path.read_bytes())
    (n,) = struct.unpack("<Q", data[:8])
    text = data[8:8 + n].decode().replace('"data_offsets": [0, ', '"data_offsets": [1, ', 1)
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + bytes(data[8 + n:]))


def short_header(path):
    path.write_bytes(struct.pack("<Q", 1 << 20) + b"{}")


BAD = {
    # name: (damage, extra args, config text, exit code, message after "palettize: ")
    "truncated": (truncated, [], None, 2, "{src}: tensor 'position_ids': data_offsets [72192, 76288] past end of data "
                                          "(76188 bytes)"),
    "lying_header": (lying, [], None, 2, "{src}: tensor 'embeddings.word_embeddings.weight': data_offsets [1, 12288] "
                                         "hold 12287 bytes, but BF16 [96, 64] needs 12288"),
    "header_past_end": (short_header, [], None, 2, "{src}: header length 1048576 past end of file (10 bytes)"),
    "bad_config_key": (None, ["--config", "{cfg}"], "global_config: {n_bits: 4, milestone: 1}\n", 1,
                       "{cfg}:1: global_config.milestone: unknown key (allowed: n_bits (or nbits), granularity, "
                       "group_size, channel_axis, cluster_dim, enable_per_channel_scale, lut_dtype, weight_threshold, "
                       "mode)"),
    "op_type_key": (None, ["--config", "{cfg}"], "op_type_configs: {linear: null}\n", 1,
                    "{cfg}:1: op_type_configs: unknown key (allowed: global_config, module_type_configs, "
                    "module_name_configs)"),
    "regex_module": (None, ["--config", "{cfg}"], "module_name_configs: {'encoder.layer.[0-9]+': null}\n", 1,
                     "{src}: module_name_configs.encoder.layer.[0-9]+: no tensor is under this module (names are "
                     "literal, not regular expressions)"),
    "target": (None, ["--minimum-deployment-target", "iOS18"], None, 1,
               "--minimum-deployment-target: a checkpoint has no deployment target"),
    "not_safetensors_output": (None, ["-o", "{tmp}/o.mlpackage"], None, 1,
                               "{tmp}/o.mlpackage: a checkpoint's output must be a .safetensors file"),
    "output_dir": (None, ["--output-dir", "{tmp}/zoo"], None, 1,
                   "{src}: --output-dir takes .mlpackage packages and folders; compress a checkpoint with -o "
                   "OUTPUT.safetensors"),
    "sensitivity_shape": (None, ["--sensitivity", "{tmp}/s.safetensors"], None, 2,
                          "{tmp}/s.safetensors: tensor 'conv.weight' is F32 [4], but const 'conv.weight' is float32 "
                          "[32, 16, 3, 3]"),
    "negative_sensitivity": (None, ["--sensitivity", "{tmp}/s2.safetensors"], None, 2,
                             "{tmp}/s2.safetensors: tensor 'conv.weight': element 0 is -1; sensitivities must be "
                             "finite and >= 0"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_input(palettize_bin, tmp_path, case):
    damage, extra, config, rc, message = BAD[case]
    src = tmp_path / "m.safetensors"
    make_model(src)
    if damage:
        damage(src)
    cfg = tmp_path / "c.yaml"
    if config is not None:
        cfg.write_text(config)
    ck.write(tmp_path / "s.safetensors", {"conv.weight": np.ones(4, np.float32)})
    ck.write(tmp_path / "s2.safetensors", {"conv.weight": -np.ones((32, 16, 3, 3), np.float32)})
    subst = {"src": src, "cfg": cfg, "tmp": tmp_path}
    extra = [a.format(**subst) for a in extra]
    out = ["-o", tmp_path / "o.safetensors"] if "-o" not in extra and "--output-dir" not in extra else []
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    proc = run(palettize_bin, "compress", src, *out, "--report", tmp_path / "r.json", *extra, rc=rc)
    assert proc.stderr.decode() == "palettize: " + message.format(**subst) + "\n"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, input unchanged


def test_packed_refuses_packages_and_existing_names(palettize_bin, mnist, tmp_path):
    proc = run(palettize_bin, "compress", mnist, "-o", tmp_path / "o.mlpackage", "--packed", rc=1)
    assert proc.stderr.decode() == f"palettize: --packed: only for .safetensors checkpoints ({mnist} is not one)\n"
    assert not (tmp_path / "o.mlpackage").exists()
    src = tmp_path / "m.safetensors"
    tensors = make_model(src)
    tensors["conv.weight.lut"] = np.zeros(3, np.float32)
    ck.write(src, tensors)
    proc = run(palettize_bin, "compress", src, "-o", tmp_path / "o.safetensors", "--packed", rc=1)
    assert proc.stderr.decode() == (f"palettize: {src}: tensor 'conv.weight.lut' exists, and --packed would write a "
                                    "tensor of that name for 'conv.weight'\n")
    # A packed output is not a dense checkpoint: packing it again is refused.
    ck.write(src, make_model(src) and {k: v for k, v in tensors.items() if k != "conv.weight.lut"})
    run(palettize_bin, "compress", src, "-o", tmp_path / "p.safetensors", "--packed")
    proc = run(palettize_bin, "compress", tmp_path / "p.safetensors", "-o", tmp_path / "q.safetensors", "--packed", rc=1)
    assert proc.stderr.decode().startswith(f"palettize: {tmp_path / 'p.safetensors'}: __metadata__ already holds 'palettize.")
    assert not (tmp_path / "q.safetensors").exists()


def test_existing_output_and_force(palettize_bin, tmp_path):
    src = tmp_path / "m.safetensors"
    make_model(src)
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"old")
    proc = run(palettize_bin, "compress", src, "-o", out, rc=1)
    assert proc.stderr.decode() == f"palettize: {out}: already exists (use --force to replace it)\n"
    assert out.read_bytes() == b"old"
    run(palettize_bin, "compress", src, "-o", out, "--force")
    assert ck.read(out)[0] == {"format": "pt"}
    proc = run(palettize_bin, "compress", src, "-o", src, "--force", rc=1)
    assert proc.stderr.decode() == f"palettize: {src}: the output is the input; write to another path\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "o.safetensors"]
