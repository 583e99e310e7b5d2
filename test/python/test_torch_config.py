"""palettize.torch's config classes against coremltools.optimize.torch.palettization's own
(coremltools 9.0, installed beside torch in .venv-torch): every YAML of configs/torch/ and a set of
dicts load in both with the same fields and the same resolved config for every module of a model,
and what coremltools refuses we refuse, unknown keys by name.

Run: .venv-torch/bin/python -m pytest test/python/test_torch_config.py (palettize installed in
that venv: scripts/setup-torch does `pip install ./python`).
"""

import enum
import io
from pathlib import Path

import attr
import pytest
import torch
import torch.nn as nn

import coremltools.optimize.torch.palettization as ct_pal
import palettize.torch as pt

ROOT = Path(__file__).resolve().parents[2]
TORCH_CONFIGS = sorted((ROOT / "configs" / "torch").glob("*.yaml"))

# (ours, coremltools') per file-name prefix.
CLASSES = {
    "post_training": (pt.PostTrainingPalettizerConfig, ct_pal.PostTrainingPalettizerConfig),
    "skm": (pt.SKMPalettizerConfig, ct_pal.SKMPalettizerConfig),
    "dkm": (pt.DKMPalettizerConfig, ct_pal.DKMPalettizerConfig),
}
MODULE_CLASSES = [
    (pt.ModulePostTrainingPalettizerConfig, ct_pal.ModulePostTrainingPalettizerConfig),
    (pt.ModuleSKMPalettizerConfig, ct_pal.ModuleSKMPalettizerConfig),
    (pt.ModuleDKMPalettizerConfig, ct_pal.ModuleDKMPalettizerConfig),
]


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.conv3 = nn.Conv2d(8, 8, 1)
        self.conv1d = nn.Conv1d(8, 8, 3)
        self.norm = nn.LayerNorm(8)
        self.embed = nn.Embedding(64, 16)
        self.fc = nn.Linear(16, 32)
        self.head = nn.Sequential(nn.Linear(32, 32), nn.Linear(32, 10))
        self.inner = nn.ModuleDict({"conv1": nn.Conv2d(8, 8, 1), "fc": nn.Linear(8, 8)})


MODEL = Block()


def plain(value):
    """A config value in a form both libraries' values compare equal in."""
    if isinstance(value, enum.Enum):
        return value.value
    return value


def fields_ct(config):
    return {a.name: plain(getattr(config, a.name)) for a in attr.fields(type(config))}


def fields_ours(config):
    return {k: plain(v) for k, v in config.as_dict().items()}


def same_module_config(ours, theirs):
    if theirs is None or ours is None:
        return ours is None and theirs is None
    if isinstance(theirs, list):
        return isinstance(ours, list) and len(ours) == len(theirs) and all(
            same_module_config(a, b) for a, b in zip(ours, theirs))
    return fields_ours(ours) == fields_ct(theirs)


def assert_same_resolution(ours, theirs):
    checked = 0
    for name, module in MODEL.named_modules():
        a, b = ours.get_module_config(name, module), theirs.get_module_config(name, module)
        assert same_module_config(a, b), f"module '{name}': ours {a!r}, coremltools {b!r}"
        checked += 1
    assert checked == len(list(MODEL.named_modules()))
    assert set(map(str, ours.module_type_configs)) == set(map(str, theirs.module_type_configs))
    assert list(ours.module_name_configs) == list(theirs.module_name_configs)


def test_the_module_configs_have_coremltools_fields_and_defaults():
    for ours, theirs in MODULE_CLASSES:
        assert list(ours._FIELDS) == [a.name for a in attr.fields(theirs)], ours.__name__
        assert fields_ours(ours()) == fields_ct(theirs()), ours.__name__


def test_configs_torch_holds_the_examples():
    names = {p.name for p in TORCH_CONFIGS}
    assert "skm_linear6_skip_conv1_conv3.yaml" in names and "post_training_grouped_4bit.yaml" in names
    for p in TORCH_CONFIGS:
        assert p.name.split("_")[0] in ("post", "skm", "dkm"), p.name


@pytest.mark.parametrize("path", TORCH_CONFIGS, ids=lambda p: p.name)
def test_every_torch_yaml_resolves_as_in_coremltools(path):
    prefix = "post_training" if path.name.startswith("post_training") else path.name.split("_")[0]
    ours_cls, theirs_cls = CLASSES[prefix]
    ours, theirs = ours_cls.from_yaml(str(path)), theirs_cls.from_yaml(str(path))
    assert_same_resolution(ours, theirs)
    # A stream too, as coremltools' from_yaml takes either.
    assert_same_resolution(ours_cls.from_yaml(io.StringIO(path.read_text())), theirs)
    if prefix == "skm":
        assert ours.calibration_nsamples == theirs.calibration_nsamples


def test_the_seed_skm_yaml():
    c = pt.SKMPalettizerConfig.from_yaml(str(ROOT / "configs/torch/skm_linear6_skip_conv1_conv3.yaml"))
    assert c.calibration_nsamples == 64
    assert c.get_module_config("conv1", MODEL.conv1) is None
    assert c.get_module_config("conv3", MODEL.conv3) is None
    assert c.get_module_config("conv2", MODEL.conv2).n_bits == 4
    assert c.get_module_config("fc", MODEL.fc).n_bits == 6
    # Names match whole: inner.conv1 is not conv1.
    assert c.get_module_config("inner.conv1", MODEL.inner.conv1).n_bits == 4


DICTS = [
    (pt.PostTrainingPalettizerConfig, ct_pal.PostTrainingPalettizerConfig, {}),
    (pt.PostTrainingPalettizerConfig, ct_pal.PostTrainingPalettizerConfig, {"global_config": None}),
    (pt.PostTrainingPalettizerConfig, ct_pal.PostTrainingPalettizerConfig,
     {"module_name_configs": {"fc": {"n_bits": 2}}}),
    (pt.PostTrainingPalettizerConfig, ct_pal.PostTrainingPalettizerConfig,
     {"global_config": {"n_bits": 3, "lut_dtype": "uint8", "channel_axis": 1},
      "module_type_configs": {"Conv2d": None, "Embedding": {"cluster_dim": 4}},
      "module_name_configs": {"head.*": {"n_bits": 8}, "inner\\..*": None}}),
    (pt.SKMPalettizerConfig, ct_pal.SKMPalettizerConfig, {}),
    (pt.SKMPalettizerConfig, ct_pal.SKMPalettizerConfig,
     {"global_config": {"n_bits": 2}, "module_type_configs": {"LayerNorm": {"n_bits": 4}, "Custom": None},
      "calibration_nsamples": 8}),
    (pt.DKMPalettizerConfig, ct_pal.DKMPalettizerConfig, {}),
    (pt.DKMPalettizerConfig, ct_pal.DKMPalettizerConfig,
     {"global_config": [{"n_bits": 4, "weight_threshold": 4096}, {"n_bits": 2, "weight_threshold": 100}],
      "module_name_configs": {"fc": [{"n_bits": 4, "weight_threshold": 4096, "palett_tau": 1},
                                     {"n_bits": 2, "weight_threshold": 100}]}}),
    (pt.DKMPalettizerConfig, ct_pal.DKMPalettizerConfig,
     {"module_type_configs": {"Linear": {"n_bits": 3, "quantize_activations": True, "dtype": "quint8",
                                         "quant_min": 0, "quant_max": 255}},
      "module_name_configs": {"conv2": {"n_bits": 2, "granularity": "per_grouped_channel", "group_size": 4,
                                        "enable_per_channel_scale": True}}}),
]


@pytest.mark.parametrize("ours_cls,theirs_cls,d", DICTS, ids=lambda x: None)
def test_dicts_resolve_as_in_coremltools(ours_cls, theirs_cls, d):
    assert_same_resolution(ours_cls.from_dict(d), theirs_cls.from_dict(d))


def test_module_type_keys_as_classes():
    d = {"module_type_configs": {nn.Linear: {"n_bits": 2}}}
    assert_same_resolution(pt.PostTrainingPalettizerConfig.from_dict(d),
                           ct_pal.PostTrainingPalettizerConfig.from_dict(d))


@pytest.mark.parametrize("cls", [pt.PostTrainingPalettizerConfig, pt.SKMPalettizerConfig, pt.DKMPalettizerConfig])
def test_unknown_keys_are_errors_naming_the_key(cls):
    with pytest.raises(ValueError, match=r"^global_confg: unrecognized key \(\w+ has global_config, "):
        cls.from_dict({"global_confg": {"n_bits": 4}})
    with pytest.raises(ValueError, match=r"^global_config\.nbits: unrecognized key \(Module\w+ has n_bits, "):
        cls.from_dict({"global_config": {"nbits": 4}})
    with pytest.raises(ValueError, match=r"^module_name_configs\.fc\.nbit: unrecognized key"):
        cls.from_dict({"module_name_configs": {"fc": {"nbit": 4}}})
    with pytest.raises(ValueError, match=r"^module_type_configs\.Linear\.granulrity: unrecognized key"):
        cls.from_yaml(io.StringIO("module_type_configs:\n  Linear:\n    granulrity: per_tensor\n"))


BAD = [
    {"global_config": {"n_bits": 4, "group_size": 4}},  # group_size with per_tensor
    {"global_config": {"granularity": "per_grouped_channel"}},  # no group_size
    {"global_config": {"granularity": "per_grouped_channel", "group_size": 0}},
    {"global_config": {"granularity": "per_channel"}},
    {"global_config": {"cluster_dim": 2, "enable_per_channel_scale": True}},
    {"global_config": {"channel_axis": 2}},
    {"global_config": {"lut_dtype": "float16"}},
    {"global_config": {"n_bits": "four"}},
    {"global_config": 4},
]


@pytest.mark.parametrize("d", BAD, ids=lambda d: repr(d["global_config"]))
@pytest.mark.parametrize("ours_cls,theirs_cls", [
    (pt.PostTrainingPalettizerConfig, ct_pal.PostTrainingPalettizerConfig),
    (pt.SKMPalettizerConfig, ct_pal.SKMPalettizerConfig)])
def test_what_coremltools_refuses_we_refuse(ours_cls, theirs_cls, d):
    with pytest.raises(Exception):
        theirs_cls.from_dict(d)
    with pytest.raises((ValueError, TypeError)):
        ours_cls.from_dict(d)


def test_dkm_refuses_what_coremltools_refuses():
    for d in ({"module_type_configs": {"Conv3x": {"n_bits": 2}}},
              {"global_config": {"channel_axis": 1}},
              {"global_config": {"palett_tau": "x"}},
              {"global_config": {"cluster_dtype": "f16"}}):
        with pytest.raises(BaseException):
            ct_pal.DKMPalettizerConfig.from_dict(d)
        with pytest.raises((ValueError, TypeError, DeprecationWarning)):
            pt.DKMPalettizerConfig.from_dict(d)


def test_set_methods_and_default_global():
    c = pt.PostTrainingPalettizerConfig().set_module_name("fc", None).set_module_type("Conv2d", {"n_bits": 2})
    assert c.global_config == pt.ModulePostTrainingPalettizerConfig()
    assert c.get_module_config("fc", MODEL.fc) is None
    assert c.get_module_config("conv2", MODEL.conv2).n_bits == 2
    assert c.get_module_config("head.0", MODEL.head[0]).n_bits == 4
