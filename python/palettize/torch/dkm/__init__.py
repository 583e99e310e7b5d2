"""Differentiable k-means palettization (coremltools' DKMPalettizer) with eDKM's memory saving,
and the lossless hand-off of its tables to Core ML (save_palettized)."""

from .export import save_palettized
from .kmeans_init import init_centroids
from .palettizer import DKMPalettizer

__all__ = ["DKMPalettizer", "init_centroids", "save_palettized"]
