"""palettize.torch's PostTrainingPalettizer and SKMPalettizer on small models: the issue's two
examples (4-bit grouped post-training; the SKM YAML of configs/torch/), and the in-process engine
against `palettize compress` on the model's state_dict saved as safetensors, bit for bit, for
several configs and dtypes, with and without sensitivities.

Needs PALETTIZE_BIN (CTest sets it) and palettize installed in this venv (scripts/setup-torch).
"""

import os
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

import palettize.torch as pt

ROOT = Path(__file__).resolve().parents[2]
SKM_YAML = ROOT / "configs/torch/skm_linear6_skip_conv1_conv3.yaml"
GROUPED_YAML = ROOT / "configs/torch/post_training_grouped_4bit.yaml"


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 16, 1)
        self.fc1 = nn.Linear(16 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 12)  # 12 outputs: groups of 4 channels divide every weight

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = torch.nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.conv3(x))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def net(seed=0):
    torch.manual_seed(seed)
    return Net()


def distinct(t):
    return torch.unique(t.detach().flatten()).numel()


def same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    view = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
            torch.float64: torch.int64}[a.dtype]
    return torch.equal(a.contiguous().view(view), b.contiguous().view(view))


def test_grouped_4bit_post_training_leaves_16_values_per_group_of_4_channels():
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = pt.PostTrainingPalettizerConfig.from_yaml(str(GROUPED_YAML))
    out = pt.PostTrainingPalettizer(model, config).compress()
    for name, m in out.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        w = m.weight.detach()
        assert not torch.equal(w, before[f"{name}.weight"]), name
        rows = w.reshape(w.shape[0], -1)
        for g in range(0, w.shape[0], 4):
            assert distinct(rows[g:g + 4]) <= 16, (name, g)
        # Grouped, not one table: the whole weight holds more than 16 values.
        assert distinct(w) > 16, name
        assert torch.equal(m.bias, before[f"{name}.bias"]), name
    # The caller's model is untouched (inplace=False).
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def calibration(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 10, (2,), generator=g)) for _ in range(n)]


def loss_fn(model, data):
    x, y = data
    return nn.functional.cross_entropy(model(x), y)


class Counting:
    """A loader that counts the items drawn from it."""

    def __init__(self, items):
        self.items, self.drawn = items, 0

    def __iter__(self):
        for item in self.items:
            self.drawn += 1
            yield item


def test_skm_yaml_skips_conv1_conv3_and_gives_linear_6_bits():
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = pt.SKMPalettizerConfig.from_yaml(str(SKM_YAML))
    loader = Counting(calibration(100))
    out = pt.SKMPalettizer(model, config).compress(dataloader=loader, loss_fn=loss_fn)
    assert loader.drawn == 64  # calibration_nsamples
    assert torch.equal(out.conv1.weight, before["conv1.weight"])
    assert torch.equal(out.conv3.weight, before["conv3.weight"])
    assert distinct(out.conv2.weight) <= 16 and not torch.equal(out.conv2.weight, before["conv2.weight"])
    for fc in ("fc1", "fc2"):
        w = getattr(out, fc).weight
        assert 16 < distinct(w) <= 64, fc
    # The sensitivities move the tables: plain 4-bit k-means of conv2 differs.
    plain = pt.PostTrainingPalettizer(net(), pt.PostTrainingPalettizerConfig.from_dict(
        {"global_config": {"n_bits": 4}})).compress()
    assert not torch.equal(plain.conv2.weight, out.conv2.weight)
    # Batch-norm-free model, but the state is restored all the same; the caller's model untouched.
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def run_cli(tmp_path, state, yaml_text, sensitivity=None):
    bin_ = os.environ.get("PALETTIZE_BIN")
    assert bin_, "PALETTIZE_BIN must name the palettize binary (CTest sets it)"
    src, dst, cfg = tmp_path / "in.safetensors", tmp_path / "out.safetensors", tmp_path / "c.yaml"
    save_file({k: v.contiguous() for k, v in state.items()}, str(src))
    cfg.write_text(yaml_text)
    args = [bin_, "compress", str(src), "-o", str(dst), "--config", str(cfg)]
    if sensitivity is not None:
        sens = tmp_path / "s.safetensors"
        save_file({k: v.contiguous() for k, v in sensitivity.items()}, str(sens))
        args += ["--sensitivity", str(sens), "--sensitivity-normalize"]
    proc = subprocess.run(args, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return load_file(str(dst))


class Mixed(nn.Module):
    """One module of each type the CLI's module rule knows (an Embedding is named *embed*)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(96, 32)
        self.fc = nn.Linear(32, 64)
        self.conv = nn.Conv2d(16, 32, 3)
        self.conv1d = nn.Conv1d(16, 32, 3)
        self.small = nn.Linear(4, 4)  # 16 elements: at 8 bits no smaller, kept by both


# (our module config, the same in the CLI's Torch schema). weight_threshold 0: coremltools'
# post-training palettizers have no threshold.
CASES = {
    "4bit": ({"n_bits": 4}, "n_bits: 4"),
    "8bit": ({"n_bits": 8}, "n_bits: 8"),
    "grouped": ({"n_bits": 3, "granularity": "per_grouped_channel", "group_size": 8},
                "n_bits: 3\n  granularity: per_grouped_channel\n  group_size: 8"),
    "grouped_axis1": ({"n_bits": 2, "granularity": "per_grouped_channel", "group_size": 16, "channel_axis": 1},
                      "n_bits: 2\n  granularity: per_grouped_channel\n  group_size: 16\n  channel_axis: 1"),
    "vector": ({"n_bits": 4, "cluster_dim": 2}, "n_bits: 4\n  cluster_dim: 2"),
    "scale_int8": ({"n_bits": 4, "enable_per_channel_scale": True, "lut_dtype": "int8"},
                   "n_bits: 4\n  enable_per_channel_scale: true\n  lut_dtype: int8"),
    "uint8": ({"n_bits": 2, "lut_dtype": "uint8"}, "n_bits: 2\n  lut_dtype: uint8"),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", list(CASES))
def test_post_training_equals_the_cli_bit_for_bit(tmp_path, case, dtype):
    ours, yaml_cfg = CASES[case]
    torch.manual_seed(3)
    model = Mixed().to(dtype)
    cli = run_cli(tmp_path, model.state_dict(), f"global_config:\n  {yaml_cfg}\n  weight_threshold: 0\n")
    out = pt.PostTrainingPalettizer(model, pt.PostTrainingPalettizerConfig.from_dict(
        {"global_config": ours})).compress()
    state = out.state_dict()
    changed = 0
    for k, v in state.items():
        assert same_bits(v, cli[k]), k
        changed += not same_bits(v, model.state_dict()[k])
    assert changed >= 4  # embed, fc, conv and conv1d were palettized
    if case == "8bit":  # 256 table entries would outweigh its 16 elements: both keep it
        assert same_bits(state["small.weight"], model.small.weight.detach())


def test_skm_equals_the_cli_with_the_same_sensitivities(tmp_path):
    model = net()
    config = pt.SKMPalettizerConfig.from_yaml(str(SKM_YAML))
    path = tmp_path / "sens.pt"
    sens = pt.SKMPalettizer(model, config).compute_sensitivity(calibration(64), loss_fn, sensitivity_path=str(path))
    out = pt.SKMPalettizer(model, config).compress(sensitivity_path=str(path))
    yaml_text = ("global_config:\n  n_bits: 4\n  weight_threshold: 0\n"
                 "module_type_configs:\n  Linear:\n    n_bits: 6\n    weight_threshold: 0\n"
                 "module_name_configs:\n  conv1: null\n  conv3: null\n")
    weights = {k: v for k, v in sens.items() if k.endswith(".weight")}
    cli = run_cli(tmp_path, model.state_dict(), yaml_text, sensitivity=weights)
    for k, v in out.state_dict().items():
        assert same_bits(v, cli[k]), k
    assert not same_bits(out.conv2.weight.detach(), model.conv2.weight.detach())


def test_missing_sensitivities_name_the_weights():
    model = Mixed()
    with pytest.raises(ValueError, match="fc.weight"):
        pt.SKMPalettizer(model, pt.SKMPalettizerConfig()).compress(
            sensitivity_path=None, dataloader=[], loss_fn=loss_fn)
