// A grid coreset for two-dimensional k-means: points merged into small cells, each cell one
// weighted point at the mean of its points.
//
// For any clustering that keeps every cell whole, the error on the points is the error on the cell
// means (weighted by counts) plus the cells' own scatter, a constant: so k-means on the cells
// optimises the real objective over those clusterings, and the few cells a boundary cuts are
// settled afterwards by exact Lloyd passes on the points. Cells are log-spaced per coordinate (the
// top bits of the float: sign, exponent and `kCoresetMantissaBits` of mantissa, so a cell spans at
// most 1/8 of its values' magnitude), which follows heavy-tailed weights far better than a random
// sample of the same size: on the 4-bit cluster_dim 2 benchmark weights ~590K float16 pairs become
// ~30-60K cells.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cluster/vector_lloyd.h"

namespace palettize {

constexpr int kCoresetMantissaBits = 3;

// Where the points went (GridCoreset2's optional output): each point's cell, and each cell's key
// (two 32-bit halves, one per coordinate: CellKey's top float bits), the sums of its points'
// coordinates (2 a cell, summed in input order; the mean is sums / counts) and its number of
// points.
struct CoresetIndex {
  std::vector<uint32_t> cell_of;
  std::vector<uint64_t> keys;
  std::vector<double> sums;
  std::vector<double> counts;
};

// The cells of `points` (n x 2), in order of first occurrence, each at the mean of
// its points (summed in input order) with weight = its count. Returns false, leaving `cells` (and
// `index`) in an unspecified state, when there would be more than max_cells or a point is not
// finite.
bool GridCoreset2(const double* points, size_t n, size_t max_cells, WeightedPoints* cells,
                  CoresetIndex* index = nullptr);

// The smallest and largest float a coordinate of cell key `half` (one half of a CoresetIndex key)
// can take: every point of the cell has float(x) in [*lo, *hi].
void CellRange(uint32_t half, float* lo, float* hi);

}  // namespace palettize
