"""coremltools.optimize.torch.palettization's post-training APIs on palettize's C++ library:
the same class names, config schemas (from_dict, from_yaml) and call signatures, so code written
for coremltools runs with only its import line changed (README "Python: palettize.torch").

DKMPalettizer, the training-time palettizer, and save_palettized, the lossless hand-off of its
tables to `palettize compress --tables`, live in palettize.torch.dkm and are exported here too.
"""

from ._config import (DKMPalettizerConfig, ModuleDKMPalettizerConfig, ModulePostTrainingPalettizerConfig,
                      ModuleSKMPalettizerConfig, PostTrainingPalettizerConfig, SKMPalettizerConfig)
from ._fields import PalettizationGranularity
from ._palettizer import PostTrainingPalettizer, SKMPalettizer
from .dkm import DKMPalettizer, save_palettized

__all__ = [
    "DKMPalettizer",
    "DKMPalettizerConfig",
    "ModuleDKMPalettizerConfig",
    "ModulePostTrainingPalettizerConfig",
    "ModuleSKMPalettizerConfig",
    "PalettizationGranularity",
    "PostTrainingPalettizer",
    "PostTrainingPalettizerConfig",
    "SKMPalettizer",
    "SKMPalettizerConfig",
    "save_palettized",
]
