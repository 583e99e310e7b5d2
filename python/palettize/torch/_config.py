"""The config classes of coremltools.optimize.torch.palettization, with the same fields,
defaults, checks and resolution rule (coremltools 9.0): a model config holds global_config,
module_type_configs and module_name_configs of module configs (None: leave the module as it is).
"""

from collections import OrderedDict

import torch

from ._fields import (DictConfig, Field, ModuleConfigBase, PalettizationGranularity, module_type_key, resolve,
                      to_dtype, to_granularity, to_lut_dtype, unknown_key)

_G = PalettizationGranularity


def _grouping_fields(axes):
    return OrderedDict([
        ("lut_dtype", Field(None, torch.dtype, optional=True, choices=(torch.int8, torch.uint8),
                            convert=to_lut_dtype)),
        ("granularity", Field("per_tensor", _G, convert=to_granularity)),
        ("group_size", Field(None, int, optional=True)),
        ("channel_axis", Field(0, int, optional=True, choices=axes)),
        ("cluster_dim", Field(None, int, optional=True)),
        ("enable_per_channel_scale", Field(False, bool, optional=True)),
    ])


def _check_group_size(config):
    if config.granularity == _G.per_grouped_channel:
        if config.group_size is None:
            raise ValueError("group_size: required with per_grouped_channel granularity")
        if config.group_size <= 0:
            raise ValueError(f"group_size: {config.group_size} is not greater than zero")
    elif config.group_size is not None:
        raise ValueError("group_size: not allowed with per_tensor granularity")


def _check_cluster_dim(config):
    if config.cluster_dim and config.cluster_dim > 1 and config.enable_per_channel_scale:
        raise ValueError(f"cluster_dim: {config.cluster_dim} > 1 is not allowed with enable_per_channel_scale")


class ModulePostTrainingPalettizerConfig(ModuleConfigBase):
    """Per-module options of PostTrainingPalettizer. enable_fast_kmeans_mode and
    rounding_precision are accepted for compatibility: palettize's k-means is exact, so it never
    rounds the weights before clustering."""

    _FIELDS = OrderedDict([("n_bits", Field(4, int, optional=True))])
    _FIELDS.update(_grouping_fields((0, 1)))
    _FIELDS["enable_fast_kmeans_mode"] = Field(True, bool, optional=True)
    _FIELDS["rounding_precision"] = Field(4, int, optional=True)

    def _check(self):
        _check_group_size(self)
        _check_cluster_dim(self)


class ModuleSKMPalettizerConfig(ModuleConfigBase):
    """Per-module options of SKMPalettizer."""

    _FIELDS = OrderedDict([("n_bits", Field(4, int))])
    _FIELDS.update(_grouping_fields((0, 1)))

    def _check(self):
        _check_group_size(self)
        _check_cluster_dim(self)


def _deprecated(message):
    def convert(name, value):
        raise DeprecationWarning(f"{name}: {message}")

    return Field(None, optional=True, convert=convert)


class ModuleDKMPalettizerConfig(ModuleConfigBase):
    """Per-module options of DKMPalettizer (the training-time palettizer), coremltools' fields
    and defaults, the advanced ones included."""

    _FIELDS = OrderedDict([
        ("n_bits", Field(None, int, optional=True)),
        ("weight_threshold", Field(2048, int)),
        ("granularity", Field("per_tensor", _G, convert=to_granularity)),
        ("group_size", Field(None, int, optional=True)),
        ("channel_axis", Field(0, int, optional=True, choices=(0,))),
        ("enable_per_channel_scale", Field(False, bool)),
        ("milestone", Field(0, int)),
        ("cluster_dim", Field(None, int, optional=True)),
        ("quant_min", Field(-128, int)),
        ("quant_max", Field(127, int)),
        ("dtype", Field(torch.qint8, torch.dtype, choices=(torch.qint8, torch.quint8, torch.float32),
                        convert=to_dtype)),
        ("lut_dtype", Field("f32", str)),
        ("quantize_activations", Field(False, bool)),
        ("cluster_permute", Field(None, tuple, optional=True)),
        ("palett_max_mem", Field(1.0, float)),
        ("kmeans_max_iter", Field(3, int)),
        ("prune_threshold", Field(1e-7, float)),
        ("kmeans_init", Field("auto", str)),
        ("kmeans_opt1d_threshold", Field(1024, int)),
        ("enforce_zero", Field(False, bool)),
        ("palett_mode", Field("dkm", str)),
        ("palett_tau", Field(0.0001, float)),
        ("palett_epsilon", Field(0.0001, float)),
        ("palett_lambda", Field(0.0, float)),
        ("add_extra_centroid", Field(False, bool)),
        ("palett_cluster_tol", Field(0.0, float)),
        ("palett_min_tsize", Field(64 * 1024, int)),
        ("palett_unique", Field(False, bool)),
        ("palett_shard", Field(False, bool)),
        ("palett_batch_mode", Field(False, bool)),
        ("palett_dist", Field(False, bool)),
        ("per_channel_scaling_factor_scheme", Field("min_max", str, choices=("min_max", "abs"))),
        ("percentage_palett_enable", Field(1.0, float)),
        ("kmeans_batch_threshold", Field(4, int)),
        ("kmeans_n_init", Field(10, int)),
        ("zero_threshold", Field(1e-7, float)),
        ("kmeans_error_bnd", Field(0.0, float)),
        ("partition_size", _deprecated("deprecated; use group_size")),
        ("cluster_dtype", _deprecated("deprecated; use lut_dtype")),
    ])

    def _check(self):
        _check_group_size(self)


class _ModelConfig(DictConfig):
    """global_config, module_type_configs and module_name_configs of `_MODULE` configs, plus the
    class's `_EXTRA` top-level fields. With none of the three given, global_config is the default
    module config (`_default`)."""

    _MODULE = None
    _EXTRA = OrderedDict()
    _LISTS = False  # DKM: a config may be a list of module configs, one per weight_threshold
    # Whether string keys of module_type_configs naming a torch.nn class become the class when the
    # config is made (coremltools' post-training configs do; DKM's keeps them as strings). Either
    # way a module matches its class or its class name; set_module_type stores keys as given.
    _CONVERT_TYPE_KEYS = True

    def __init__(self, global_config=None, module_type_configs=None, module_name_configs=None, **extra):
        for key in extra:
            if key not in self._EXTRA:
                raise ValueError(unknown_key(key, type(self).__name__, self._known()))
        # coremltools sorts the lists of module_type_configs and module_name_configs by
        # weight_threshold, but leaves a global_config list in its order.
        self.global_config = self._value("global_config", global_config, sort=False)
        types = OrderedDict() if module_type_configs is None else module_type_configs
        names = OrderedDict() if module_name_configs is None else module_name_configs
        for what, d in (("module_type_configs", types), ("module_name_configs", names)):
            if not isinstance(d, dict):
                raise TypeError(f"{what}: expected a mapping, got {type(d).__name__}")
        for key in names:
            if not isinstance(key, str):
                raise TypeError(f"module_name_configs: key {key!r} is not a string")
        for key in types:
            self._check_type_key(key)
        key = module_type_key if self._CONVERT_TYPE_KEYS else (lambda k: k)
        self.module_type_configs = OrderedDict(
            (key(k), self._value(f"module_type_configs.{k}", v)) for k, v in types.items())
        self.module_name_configs = OrderedDict(
            (k, self._value(f"module_name_configs.{k}", v)) for k, v in names.items())
        for name, field in self._EXTRA.items():
            setattr(self, name, field.apply(name, extra.get(name, field.default)))
        if self.global_config is None and not self.module_type_configs and not self.module_name_configs:
            self._default()

    def _default(self):
        self.global_config = self._MODULE()

    def _check_type_key(self, key):
        if not isinstance(key, (str, type)):
            raise TypeError(f"module_type_configs: key {key!r} is not a string or a module class")

    def _value(self, where, value, sort=True):
        if value is None or isinstance(value, self._MODULE):
            return value
        if isinstance(value, dict):
            try:
                return self._MODULE.from_dict(value)
            except (TypeError, ValueError) as e:
                raise type(e)(f"{where}.{e}") from None
        if self._LISTS and isinstance(value, list):
            configs = [self._value(f"{where}[{i}]", v) for i, v in enumerate(value)]
            return sorted(configs, key=lambda c: c.weight_threshold) if sort else configs
        raise TypeError(f"{where}: expected a {self._MODULE.__name__}, a mapping or null, got {type(value).__name__}")

    @classmethod
    def _known(cls):
        return ("global_config", "module_type_configs", "module_name_configs", *cls._EXTRA)

    def set_global(self, global_config):
        self.global_config = self._value("global_config", global_config, sort=False)
        return self

    def set_module_type(self, object_type, opt_config):
        self._check_type_key(object_type)
        self.module_type_configs[object_type] = self._value("module_type_configs", opt_config)
        return self

    def set_module_name(self, module_name, opt_config):
        self.module_name_configs[module_name] = self._value("module_name_configs", opt_config)
        return self

    def get_module_config(self, name, module):
        """The module config for submodule `name` of the model (None: skip it)."""
        return resolve(self, name, module)

    def as_dict(self):
        def plain(v):
            if isinstance(v, list):
                return [plain(c) for c in v]
            return None if v is None else v.as_dict()

        out = OrderedDict(global_config=plain(self.global_config),
                          module_type_configs=OrderedDict((k, plain(v)) for k, v in self.module_type_configs.items()),
                          module_name_configs=OrderedDict((k, plain(v)) for k, v in self.module_name_configs.items()))
        for name in self._EXTRA:
            out[name] = getattr(self, name)
        return out

    def __repr__(self):
        return f"{type(self).__name__}({dict(self.as_dict())!r})"


class PostTrainingPalettizerConfig(_ModelConfig):
    """How PostTrainingPalettizer palettizes each submodule."""

    _MODULE = ModulePostTrainingPalettizerConfig


class SKMPalettizerConfig(_ModelConfig):
    """How SKMPalettizer palettizes each submodule, and how many calibration samples it uses."""

    _MODULE = ModuleSKMPalettizerConfig
    _EXTRA = OrderedDict([("calibration_nsamples", Field(128, int))])


# DKM's module types (coremltools' DKMPalettizerModulesRegistry) and the config each gets when
# no config is given (its DEFAULT_PALETTIZATION_SCHEME: 4 bits for Linear, 2 for the others).
_DKM_MODULES = ("Conv1d", "Conv2d", "Conv3d", "Linear", "LayerNorm", "Embedding", "MultiheadAttention")
_DKM_DEFAULT_BITS = OrderedDict([("Linear", 4), ("Conv1d", 2), ("Conv2d", 2), ("Conv3d", 2), ("LayerNorm", 2),
                                 ("MultiheadAttention", 2), ("Embedding", 2)])


class DKMPalettizerConfig(_ModelConfig):
    """How DKMPalettizer palettizes each submodule during training. A config may be a list of
    module configs, tried by weight_threshold (sorted ascending)."""

    _MODULE = ModuleDKMPalettizerConfig
    _LISTS = True
    _CONVERT_TYPE_KEYS = False

    def _default(self):
        self.module_type_configs = OrderedDict(
            (getattr(torch.nn, name), ModuleDKMPalettizerConfig(n_bits=bits, cluster_dim=1))
            for name, bits in _DKM_DEFAULT_BITS.items())

    def _check_type_key(self, key):
        name = key if isinstance(key, str) else getattr(key, "__name__", None)
        if name not in _DKM_MODULES:
            raise ValueError(f"module_type_configs: key {key!r} is not one of {', '.join(_DKM_MODULES)}")
