"""DKMPalettizer's configuration in coremltools.optimize.torch's schema (DKMPalettizerConfig):
a dict, or any object with `global_config`, `module_type_configs` and `module_name_configs`
whose module entries are dicts or objects with the ModuleDKMPalettizerConfig attributes.

Resolution, as coremltools: module_name_configs[name], then module_type_configs[type] (keys:
the class, its name "Linear", or "torch.nn.Linear"), then global_config; None at a level means
"do not palettize". With no entry at all, coremltools' defaults per module type apply (Linear 4
bits, Conv and Embedding 2 bits). A list of configs for one key is sorted by weight_threshold and
the last one whose threshold the weight exceeds applies."""

import torch

SUPPORTED = (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Embedding)

# The keys this implementation honours, with coremltools' defaults (n_bits None: the module
# type's default).
DEFAULTS = {
    "n_bits": None,
    "weight_threshold": 2048,
    "granularity": "per_tensor",
    "group_size": None,
    "channel_axis": 0,
    "enable_per_channel_scale": False,
    "milestone": 0,
    "cluster_dim": None,
    "quant_min": -128,
    "quant_max": 127,
    "dtype": torch.qint8,
    "lut_dtype": "f32",
    "cluster_dtype": None,
    "quantize_activations": False,
    # Advanced options coremltools exposes that shape the soft k-means itself.
    "palett_tau": 0.0001,
    "kmeans_max_iter": 3,
}
TABLE_DTYPES = {"f32": torch.float32, "f16": torch.float16, "b16": torch.bfloat16}
# Quantized tables: trained in float32, each table quantized to int8 with one scale at finalize
# (dkm_weight.quantize_int8; coremltools also fake-quantizes them during training).
INT8_TABLES = ("i8",)
ACT_DTYPES = {"qint8": torch.qint8, "quint8": torch.quint8, "float32": torch.float32}


def _get(obj, key, default=None):
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _resolve_module_config(raw, module_type):
    """The full dict of one module entry; unknown dict keys are errors naming the key."""
    out = dict(DEFAULTS)
    if isinstance(raw, dict):
        for k in raw:
            if k not in DEFAULTS:
                raise ValueError(f"unknown key '{k}' in a DKM module config (known: {', '.join(DEFAULTS)})")
        out.update(raw)
    else:
        for k in DEFAULTS:
            if hasattr(raw, k):
                out[k] = getattr(raw, k)
    gran = getattr(out["granularity"], "value", out["granularity"])
    out["granularity"] = str(gran).lower()
    if out["granularity"] not in ("per_tensor", "per_grouped_channel"):
        raise ValueError(f"granularity: {gran!r} is not per_tensor or per_grouped_channel")
    if out["granularity"] == "per_grouped_channel" and not out["group_size"]:
        raise ValueError("group_size: required (>= 1) with per_grouped_channel")
    if out["n_bits"] is None:
        out["n_bits"] = 4 if module_type is torch.nn.Linear else 2
    if out["n_bits"] not in (1, 2, 3, 4, 5, 6, 7, 8):
        raise ValueError(f"n_bits: {out['n_bits']!r} is not an integer in 1..8")
    out["cluster_dim"] = out["cluster_dim"] or 1
    if out["channel_axis"] not in (0, None):
        raise ValueError(f"channel_axis: {out['channel_axis']!r}: only 0 (the output channels)")
    if out["cluster_dim"] > 1 and out["enable_per_channel_scale"]:
        raise ValueError("cluster_dim > 1 with enable_per_channel_scale is not supported")
    table = out["cluster_dtype"] if out["cluster_dtype"] not in (None, "") else out["lut_dtype"]
    if table not in TABLE_DTYPES and table not in INT8_TABLES:
        raise ValueError(f"lut_dtype/cluster_dtype: {table!r} is not one of "
                         f"{', '.join((*TABLE_DTYPES, *INT8_TABLES))}")
    out["lut_int8"] = table in INT8_TABLES
    out["table_dtype"] = torch.float32 if out["lut_int8"] else TABLE_DTYPES[table]
    dt = out["dtype"]
    if isinstance(dt, str):
        name = dt.replace("torch.", "")
        if name not in ACT_DTYPES:
            raise ValueError(f"dtype: {dt!r} is not one of {', '.join(ACT_DTYPES)}")
        out["dtype"] = ACT_DTYPES[name]
    elif dt not in ACT_DTYPES.values():
        raise ValueError(f"dtype: {dt!r} is not one of {', '.join(ACT_DTYPES)}")
    if out["quant_min"] >= out["quant_max"]:
        raise ValueError("quant_min must be below quant_max")
    return out


def _pick(entry, numel):
    """An entry may be one config or a list ordered by weight_threshold."""
    if isinstance(entry, (list, tuple)):
        chosen = None
        for c in sorted(entry, key=lambda c: _get(c, "weight_threshold", 2048)):
            if numel > _get(c, "weight_threshold", 2048):
                chosen = c
        return chosen if chosen is not None else entry[0]
    return entry


_DEFAULT_TYPES = {torch.nn.Linear: {"n_bits": 4}, torch.nn.Conv1d: {"n_bits": 2}, torch.nn.Conv2d: {"n_bits": 2},
                  torch.nn.Conv3d: {"n_bits": 2}, torch.nn.Embedding: {"n_bits": 2}}


def resolve(config, name, module):
    """The resolved config dict for module `name`, or None when it is not palettized."""
    config = config if config is not None else {}
    glob = _get(config, "global_config")
    types = _get(config, "module_type_configs") or {}
    names = _get(config, "module_name_configs") or {}
    if isinstance(config, dict):
        for k in config:
            if k not in ("global_config", "module_type_configs", "module_name_configs"):
                raise ValueError(f"unknown key '{k}' in the DKM config")
    if glob is None and not types and not names:
        types = _DEFAULT_TYPES
    mtype = type(module)
    if not isinstance(module, SUPPORTED):
        return None
    if name in names:
        entry = names[name]
    else:
        found, entry = False, None
        for key, value in types.items():
            if key in (mtype, mtype.__name__, f"torch.nn.{mtype.__name__}", f"nn.{mtype.__name__}"):
                found, entry = True, value
                break
        if not found:
            entry = glob
    entry = _pick(entry, module.weight.numel())
    if entry is None:
        return None
    cfg = _resolve_module_config(entry, mtype)
    if module.weight.numel() <= cfg["weight_threshold"]:
        return None
    return cfg
