// Palettizing one weight: tables (LUTs) and indices for each group of channels, chosen to
// minimise the error of the weight as Core ML will decompress it, and that decompressed weight.
//
// View a weight of shape [d_0 .. d_{K-1}] with channel axis a as [outer, C, inner]. Channels
// [t*G, (t+1)*G) share table t (G = group_size; one table for per_tensor). With cluster_dim D > 1
// the D consecutive channels c = j*D .. j*D+D-1 at one (outer, inner) position form a vector.
// With a per-channel scale, s(o, i) = max_c |w(o, c, i)| (1 where that is 0), as coremltools
// computes it; the weight decompresses to round(s * lut[index]).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mil/weights.h"
#include "palettize/config.h"
#include "plan/plan.h"
#include "sensitivity/sensitivity.h"

namespace palettize {

struct PalettizedWeight {
  int nbits = 0;
  int cluster_dim = 1;
  int channel_axis = 0;
  uint64_t tables = 1;

  // Table entries as stored: for float LUTs, values in the weight's dtype; for int8/uint8 LUTs,
  // the integers, with one scale (and uint8: one offset) per table. Layout [tables, 2^nbits, D].
  std::vector<double> lut;
  std::vector<double> lut_scale;   // per table (quantized LUTs only)
  std::vector<double> lut_offset;  // per table (uint8 LUTs only)

  std::vector<uint8_t> indices;  // one per element (D == 1) or per vector, row-major
  std::vector<uint64_t> indices_shape;

  std::vector<double> channel_scale;  // per-channel scale, shape = weight shape with d_a = 1
  std::vector<uint64_t> scale_shape;

  std::vector<double> decoded;  // the weight as it decompresses, row-major, exact in its dtype
  double sse = 0;
  double max_abs_error = 0;
  double signal = 0;        // sum of squares of the original weight (may overflow: see snr_db)
  double weighted_sse = 0;  // sum s_i (w_i - decoded_i)^2, with sensitivities s only
  // 10 log10(signal / sse), from sums kept in double's range (float64 weights beyond 2^256 or
  // below 2^-256 are summed scaled by a power of two): finite, or +infinity exactly when every
  // element decodes to its own value. (sse itself may round to 0 for float64 subnormals.)
  double snr_db = INFINITY;
};

// Palettizes `values` (the weight's elements as doubles, row-major). Returns false with `reason`
// when the weight cannot be palettized with this config (e.g. more than 256 unique values in
// unique mode, NaN/Inf values, or float64 values so large that sse or max_abs_error would not fit
// a double). Float64 weights of any finite magnitude, subnormals included, are clustered and
// their errors summed scaled by a power of two, which is exact. `allowed_nbits` lists the widths the output
// form can hold (unique mode picks the smallest that fits).
//
// With `sensitivity` (kmeans mode), each scalar table minimises sum_i s_i (w_i - c(w_i))^2 over
// its group, exactly: equal values merge with their sensitivities summed. Elements of sensitivity
// 0 do not move the table but still take their nearest entry; a group whose sensitivities are all
// 0 takes the plain (count-weighted) table. A vector table (cluster_dim D > 1) minimises
// sum_v S_v ||w_v - c(w_v)||^2 over the group's vectors by weighted vector k-means, S_v the sum of
// vector v's D sensitivities (coremltools' SKM rule; WeightedVectorKMeans); vectors still take the
// entry nearest to them. `weighted_sse` is the per-element sum in every case. `decoded` is filled
// when `keep_decoded`.
bool PalettizeWeight(const std::vector<double>& values, const TensorShape& shape, const WeightPlan& plan,
                     const std::vector<int>& allowed_nbits, PalettizedWeight* out, std::string* reason,
                     const ElementWeights* sensitivity = nullptr, bool keep_decoded = true);

// The same, from the weight's raw little-endian bytes. Scalar tables without a per-channel scale on
// float16 and float32 weights take a fast path (a histogram of bit patterns for float16, a sort for
// float32; index assignment through the distinct values); everything else converts to doubles and
// takes the general path. Both give identical results. `decoded` is filled only when asked for.
bool PalettizeWeightRaw(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                        const std::vector<int>& allowed_nbits, bool keep_decoded, PalettizedWeight* out,
                        std::string* reason, const ElementWeights* sensitivity = nullptr);

}  // namespace palettize
