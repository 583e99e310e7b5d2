"""coremltools.optimize.torch.palettization's post-training APIs on palettize's C++ library:
the same class names, config schemas (from_dict, from_yaml) and call signatures, so code written
for coremltools runs with only its import line changed (README "Python: palettize.torch").

DKMPalettizerConfig and ModuleDKMPalettizerConfig are here; DKMPalettizer, the training-time
palettizer, lives in palettize.torch.dkm.
"""

from ._config import (DKMPalettizerConfig, ModuleDKMPalettizerConfig, ModulePostTrainingPalettizerConfig,
                      ModuleSKMPalettizerConfig, PostTrainingPalettizerConfig, SKMPalettizerConfig)
from ._fields import PalettizationGranularity
from ._palettizer import PostTrainingPalettizer, SKMPalettizer

__all__ = [
    "DKMPalettizerConfig",
    "ModuleDKMPalettizerConfig",
    "ModulePostTrainingPalettizerConfig",
    "ModuleSKMPalettizerConfig",
    "PalettizationGranularity",
    "PostTrainingPalettizer",
    "PostTrainingPalettizerConfig",
    "SKMPalettizer",
    "SKMPalettizerConfig",
]
