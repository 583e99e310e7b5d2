// Lloyd's iterations on every point of a two-dimensional weight, a grid cell at a time
// (vector_coreset.h): the polish after the restarts on the cells.
//
// A cell's float coordinates lie in a box known from its key. When the box lies inside one
// centroid's region with a margin that float rounding cannot cross (the nearest centroid to the
// box's centre, plus the box's radius, is nearer than the second nearest minus the radius), every
// point of the cell takes that centroid in VectorLloyd's float search, so the cell is assigned
// whole and its sums added at once. Only the points of the other cells, near a boundary, are
// searched one by one. Each iteration is then Lloyd's exact assignment and exact means, at the
// cost of the cells and a pass over the points' cell numbers, with no bounds to keep: the first
// full search of every point, most of VectorLloyd::Iterate's time on 1.18M points, is gone.
#pragma once

#include <cstddef>
#include <vector>

#include "cluster/vector_coreset.h"
#include "cluster/vector_lloyd.h"

namespace palettize {

// Lloyd from `centroids` (k x 2) on `points` (n x 2, each of weight 1) grouped by `index` (from
// GridCoreset2 over the same points), stopping as VectorLloyd::Iterate does: when no label
// changes, the error improves by at most tol x itself, or after max_iterations updates. The
// result's centroids are the means of the final labels and weighted_sse their error (the sum of
// squares less the explained part); its labels are left empty. False when a cluster would be
// empty: VectorLloyd's rule for that case needs every point's error, so the caller runs it.
bool CellLloyd(const double* points, size_t n, const CoresetIndex& index, std::vector<double> centroids,
               size_t k, int max_iterations, double tol, LloydRun* run);

}  // namespace palettize
