"""DKM -> Core ML, losslessly (issue 17 item 4): a model palettized by palettize.torch.dkm is
saved with save_palettized, converted by coremltools' ct.convert at float32 precision, and
`palettize compress --tables` writes LUT ops whose decompression (coremltools'
decompress_weights) equals the finalized weights bit for bit. Run from the repo root:
    PYTHONPATH=python PALETTIZE_BIN=build/apps/palettize/palettize \\
        .venv-torch/bin/python -m pytest test/python/test_dkm_coreml.py"""

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "AVX512_ICL")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch", reason="torch is not installed (scripts/setup-torch)")
ct = pytest.importorskip("coremltools", reason="coremltools is not installed (scripts/setup-torch)")
torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "oracle"))
import dump_weights  # noqa: E402
from palettize.torch.dkm import DKMPalettizer, save_palettized  # noqa: E402
from palettize.torch.dkm.export import write_safetensors  # noqa: E402

TIMEOUT = 300


def palettize_bin():
    path = os.environ.get("PALETTIZE_BIN", str(ROOT / "build" / "apps" / "palettize" / "palettize"))
    if not Path(path).exists():
        pytest.fail(f"PALETTIZE_BIN {path} does not exist: build first")
    return path


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.block = torch.nn.Sequential(torch.nn.Linear(16 * 4 * 4, 64), torch.nn.ReLU())
        self.head = torch.nn.Linear(64, 64)

    def forward(self, x):
        h = torch.relu(self.conv(x)).flatten(1)
        return self.head(self.block(h))


CONFIGS = {
    "per_tensor_4bit": {"global_config": {"n_bits": 4, "weight_threshold": 1000}},
    "grouped_vectors_scale": {
        "global_config": {"n_bits": 3, "weight_threshold": 1000, "enable_per_channel_scale": True},
        "module_name_configs": {
            "conv": {"n_bits": 2, "weight_threshold": 1000, "granularity": "per_grouped_channel",
                     "group_size": 4, "cluster_dim": 2},
            "head": {"n_bits": 2, "weight_threshold": 1000, "granularity": "per_grouped_channel",
                     "group_size": 16},
        },
    },
    # int8 tables (lut_dtype "i8"): Core ML's quantized LUT, a constexpr_blockwise_shift_scale of
    # the int8 entries feeding constexpr_lut_to_dense; with a per-channel scale on conv.
    "int8_tables": {
        "global_config": {"n_bits": 4, "weight_threshold": 1000, "lut_dtype": "i8"},
        "module_name_configs": {
            "conv": {"n_bits": 3, "weight_threshold": 1000, "lut_dtype": "i8", "enable_per_channel_scale": True},
            "head": {"n_bits": 2, "weight_threshold": 1000, "lut_dtype": "i8", "granularity": "per_grouped_channel",
                     "group_size": 16},
        },
    },
}


def finalized(cfg):
    torch.manual_seed(0)
    pal = DKMPalettizer(Net(), cfg)
    model = pal.prepare()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(32, 8, 4, 4)
    for _ in range(3):
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        pal.step()
    return pal.finalize()


def convert(model, path):
    example = torch.randn(1, 8, 4, 4)
    traced = torch.jit.trace(model.eval(), example)
    ml = ct.convert(traced, inputs=[ct.TensorType(name="x", shape=example.shape)], convert_to="mlprogram",
                    compute_precision=ct.precision.FLOAT32, minimum_deployment_target=ct.target.iOS16)
    ml.save(str(path))


def run(args, expect_rc=0):
    p = subprocess.run([palettize_bin(), *map(str, args)], capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == expect_rc, (p.returncode, p.stdout, p.stderr)
    return p


def ct_decompressed(pkg, tmp):
    m = ct.models.MLModel(str(pkg), skip_model_load=True)
    out = tmp / "ct_decompressed.mlpackage"
    ct.optimize.coreml.decompress_weights(m).save(str(out))
    d = dump_weights.dump(out)
    return {w["name"]: d["values"][dump_weights.npz_key(w["program"], w["function"], w["name"])]
            for w in d["weights"]}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_tables_make_lut_ops_that_decompress_to_the_finalized_weights(case, tmp_path):
    model = finalized(CONFIGS[case])
    tables = tmp_path / "tables.safetensors"
    save_palettized(model, tables)
    pkg, out, report = tmp_path / "m.mlpackage", tmp_path / "out.mlpackage", tmp_path / "r.json"
    convert(model, pkg)
    run(["compress", pkg, "-o", out, "--tables", tables, "--report", report])
    rep = json.loads(report.read_text())
    palettized = {w["name"] for w in rep["weights"] if w["status"] == "palettized"}
    assert palettized == {"conv_weight", "block_0_weight", "head_weight"}
    values = ct_decompressed(out, tmp_path)
    for name, param in (("conv_weight", model.conv.weight), ("block_0_weight", model.block[0].weight),
                        ("head_weight", model.head.weight)):
        want = param.detach().numpy()
        got = values[name]
        assert got.dtype == np.float32 and got.shape == want.shape, name
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), name
    # The biases stay as they are.
    assert np.array_equal(values["head_bias"], model.head.bias.detach().numpy())
    # A LUT per weight really is in the output: its weights are no longer plain consts.
    spec = ct.models.MLModel(str(out), skip_model_load=True).get_spec()
    ops = [op.type for op in spec.mlProgram.functions["main"].block_specializations.values().__iter__().__next__()
           .operations]
    assert ops.count("constexpr_lut_to_dense") == 3
    if case == "int8_tables":
        header = json.loads(tables.read_bytes()[8:8 + int.from_bytes(tables.read_bytes()[:8], "little")])
        for key in ("conv.weight", "block.0.weight", "head.weight"):
            assert json.loads(header["__metadata__"]["palettize." + key])["lut_dtype"] == "int8"
            assert header[key + ".lut"]["dtype"] == "I8" and header[key + ".lut_scale"]["dtype"] == "F32"
        # block_0 and head keep the int8 entries behind a shift/scale op (conv's per-channel
        # scale is folded into a float table by compress's default --per-channel-scale-form).
        assert ops.count("constexpr_blockwise_shift_scale") >= 2
        for w in rep["weights"]:
            if w["name"] in ("block_0_weight", "head_weight"):
                assert w["config"]["lut_dtype"] == "int8", w


def test_tables_that_do_not_fit_the_model_are_one_line_errors(tmp_path):
    model = finalized(CONFIGS["per_tensor_4bit"])
    tables = tmp_path / "tables.safetensors"
    save_palettized(model, tables)
    pkg = tmp_path / "m.mlpackage"
    # Converted from other weights: the tables do not decode to the consts.
    with torch.no_grad():
        model.head.weight.mul_(2)
    convert(model, pkg)
    p = run(["compress", pkg, "-o", tmp_path / "o.mlpackage", "--tables", tables], expect_rc=1)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "table 'head.weight' for const 'head_weight'" in lines[0], p.stderr
    assert "decodes to" in lines[0]
    assert not (tmp_path / "o.mlpackage").exists()
    # A table whose name matches no const.
    other = torch.nn.Sequential()
    other.add_module("elsewhere", model.head)
    model.head._palettize_table = None
    del model.head._palettize_table
    pal = DKMPalettizer(other, {"global_config": {"n_bits": 2, "weight_threshold": 100}})
    pal.prepare(inplace=True)
    fin = pal.finalize()
    save_palettized(fin, tmp_path / "other.safetensors")
    p = run(["compress", pkg, "-o", tmp_path / "o.mlpackage", "--tables", tmp_path / "other.safetensors"],
            expect_rc=1)
    assert "table 'elsewhere.weight' matches no const (looked for elsewhere.weight, elsewhere_weight" in p.stderr
    # An int8 table without its lut_scale.
    int8 = finalized(CONFIGS["int8_tables"])
    save_palettized(int8, tmp_path / "int8.safetensors")
    blob = (tmp_path / "int8.safetensors").read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__")
    kept = [(k, v["dtype"], v["shape"], blob[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]])
            for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
            if k != "head.weight.lut_scale"]
    write_safetensors(tmp_path / "no_scale.safetensors", kept, meta)
    convert(int8, tmp_path / "int8.mlpackage")
    p = run(["compress", tmp_path / "int8.mlpackage", "-o", tmp_path / "o.mlpackage", "--tables",
             tmp_path / "no_scale.safetensors"], expect_rc=1)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "table 'head.weight': no tensor head.weight.lut_scale" in lines[0], p.stderr
    # Tables with a config: refused before any work.
    p = run(["compress", pkg, "-o", tmp_path / "o.mlpackage", "--tables", tables, "--nbits", "4"], expect_rc=1)
    assert "--tables: not with palettization flags" in p.stderr
