// The tables (LUTs) of a group: k-means, evenly spaced or unique entries, rounded to the
// weight's dtype and, for 8-bit tables, quantized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cluster/kmeans1d.h"
#include "palettizer/distinct.h"

namespace palettize {

// The smallest positive value of MIL dtype `mil_type` (float16, bfloat16, float32; else double's).
double SmallestPositive(int mil_type);

// Quantizes one table's entries to 8-bit integers: int8 symmetric (scale = max|v| / 127), uint8
// affine (scale = (max - min) / 255, offset = round(-min / scale)). Scale and offset are rounded
// to the weight's dtype first, so the dequantized entries are what Core ML computes. A scale that
// rounds to 0 (subnormal tables) becomes the dtype's smallest positive value, of which every
// entry is then an integer multiple.
void QuantizeTable(double* entries, size_t n, LutDType type, int mil_type, double* scale, double* offset);

// The smallest allowed width whose tables hold `most` entries, or 0.
int UniqueNBits(size_t most, const std::vector<int>& allowed);

// Evenly spaced entries from lo to hi. When hi - lo overflows (float64 weights near the largest
// double), the halves are spaced and doubled back, exactly.
void UniformTable(double lo, double hi, uint64_t K, double* table);

// The optimal k-means centroids of ascending `xs` with positive weights `ws`. Values or weights
// outside FarExponent's safe range are first scaled by powers of two (the optimum scales with
// them) and the centroids scaled back; values that become equal in the scaled frame (they differ
// by less than 2^-1074 of the largest) merge, as equal values do. `counts`: `ws` are element
// counts, known positive and in the safe range, so they are not searched for their largest.
Clustering1D SafeKMeans1D(const double* xs, const double* ws, size_t n, uint64_t K, bool counts = false);

// Fills a scalar table from a group's distinct values (ascending, with weights): the optimal
// k-means centroids, evenly spaced entries, or the values themselves. Returns the entries used.
size_t ScalarTable(const DistinctValues& d, const PalettizeConfig& cfg, uint64_t K, double* table);

// Completes a table of K entries of D values whose first `used` are set: the rest repeat the last
// (harmless, and keeps scalar tables sorted), all are rounded to the dtype and, for 8-bit tables,
// quantized. `entries` receives what Core ML decompresses each entry to.
void FinishTable(double* table, size_t used, uint64_t K, uint64_t D, const PalettizeConfig& cfg, int dtype,
                 double* entries, double* lut_scale, double* lut_offset);

}  // namespace palettize
