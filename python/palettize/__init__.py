"""palettize: exact weight palettization. `palettize.torch` holds coremltools.optimize.torch's
palettizer APIs on palettize's C++ library (README "Python: palettize.torch")."""
