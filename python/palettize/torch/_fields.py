"""The machinery of the config classes (_config.py): typed fields with coremltools' defaults,
converters and checks, strict construction from dicts, and the module-config resolution rule.

A config class lists its fields in `_FIELDS`; construction converts then checks every field and
then runs the class's `_check` (rules across fields). Errors are ValueError (a wrong value) or
TypeError (a wrong type) whose message starts with the field's name, as `n_bits: ...`.
"""

import enum
import re
from collections import OrderedDict

import torch


class PalettizationGranularity(enum.Enum):
    """The values of `granularity`, as coremltools.optimize.torch's enum of the same name."""

    per_tensor = "per_tensor"
    per_grouped_channel = "per_grouped_channel"


class Field:
    """One field: its default, a converter applied to any value but None, and a check."""

    def __init__(self, default, types=None, optional=False, choices=None, convert=None):
        self.default = default
        self.types = types
        self.optional = optional
        self.choices = choices
        self.convert = convert

    def apply(self, name, value):
        if value is None:
            if self.optional:
                return None
            raise TypeError(f"{name}: null is not allowed")
        if self.convert is not None:
            value = self.convert(name, value)
        elif self.types is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # YAML's 1 for a float field, as coremltools' converter takes it
        if self.types is not None and (not isinstance(value, self.types) or
                                       (isinstance(value, bool) and bool not in _as_tuple(self.types))):
            raise TypeError(f"{name}: {value!r} is not of type {_type_names(self.types)}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name}: {value!r} is not one of {list(self.choices)}")
        return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _type_names(types):
    return " or ".join(t.__name__ for t in _as_tuple(types))


def to_granularity(name, value):
    try:
        return PalettizationGranularity(value.value if isinstance(value, PalettizationGranularity) else value)
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not one of per_tensor, per_grouped_channel") from None


# The dtype names coremltools.optimize.torch accepts in configs (torch_utils.maybe_convert_str_to_dtype).
_DTYPES = {
    "quint8": torch.quint8, "qint8": torch.qint8, "float32": torch.float32, "int8": torch.int8,
    "uint8": torch.uint8, "int4": torch.int8, "uint4": torch.uint8, "qint4": torch.qint8,
    "quint4": torch.quint8, "uint3": torch.uint8, "int3": torch.int8, "float16": torch.float16,
}


def to_dtype(name, value):
    if isinstance(value, torch.dtype):
        return value
    if isinstance(value, str):
        key = value[len("torch."):] if value.startswith("torch.") else value
        if key in _DTYPES:
            return _DTYPES[key]
    raise ValueError(f"{name}: {value!r} is not a dtype name ({', '.join(_DTYPES)})")


def to_lut_dtype(name, value):
    """coremltools' converter for the post-training lut_dtype: falsy values stay as they are."""
    return to_dtype(name, value) if value else value


def unknown_key(key, owner, known):
    """The error for a key the schema does not have: "nbits: unrecognized key (... has n_bits, ...)"."""
    return f"{key}: unrecognized key ({owner} has {', '.join(known)})"


class DictConfig:
    """from_dict and from_yaml of every config class (module and model level): a dict is the
    keyword arguments of the constructor, which rejects unknown keys naming them."""

    @classmethod
    def from_dict(cls, config_dict):
        if not isinstance(config_dict, dict):
            raise TypeError(f"{cls.__name__}: expected a dict, got {type(config_dict).__name__}")
        return cls(**config_dict)

    @classmethod
    def from_yaml(cls, yml):
        """From a YAML stream or the path of a YAML file."""
        return cls.from_dict(load_yaml(yml))


class ModuleConfigBase(DictConfig):
    """A module-level config: the fields of `_FIELDS`, in order."""

    _FIELDS = OrderedDict()

    def __init__(self, **kwargs):
        for key in kwargs:
            if key not in self._FIELDS:
                raise ValueError(unknown_key(key, type(self).__name__, self._FIELDS))
        for name, field in self._FIELDS.items():
            value = kwargs.get(name, field.default)
            object.__setattr__(self, name, field.apply(name, value))
        self._check()

    def _check(self):
        pass

    def as_dict(self):
        return OrderedDict((name, getattr(self, name)) for name in self._FIELDS)

    def __eq__(self, other):
        return type(self) is type(other) and self.as_dict() == other.as_dict()

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"{type(self).__name__}({fields})"


def load_yaml(yml):
    """A YAML stream or a path, as coremltools' from_yaml: empty is {}, anything but a mapping an error."""
    import yaml

    if isinstance(yml, str):
        with open(yml, "r") as f:
            data = yaml.safe_load(f)
    else:
        data = yaml.safe_load(yml)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ValueError(f"the YAML must hold a mapping, not {type(data).__name__}")
    return data


def module_type_key(key):
    """A module_type_configs key as coremltools stores it: a string naming a class of torch.nn
    ("Linear") becomes that class; classes, and other strings (a custom module's class name),
    stay as they are."""
    if isinstance(key, str) and isinstance(getattr(torch.nn, key, None), type):
        return getattr(torch.nn, key)
    return key


def resolve(config, name, module):
    """The module config for submodule `name` (coremltools' OptimizationConfig.get_module_config):
    the first module_name_configs key that fully matches `name` as a regular expression, else the
    module's type (class, then class name) in module_type_configs, else global_config. None skips."""
    for key, value in config.module_name_configs.items():
        if re.fullmatch(key, name):
            return value
    if type(module) in config.module_type_configs:
        return config.module_type_configs[type(module)]
    if type(module).__name__ in config.module_type_configs:
        return config.module_type_configs[type(module).__name__]
    return config.global_config
