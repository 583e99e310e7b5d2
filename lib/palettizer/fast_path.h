// The fast path for scalar tables of float16, bfloat16, float32 and float64 weights without per-channel
// scales: tables from each group's distinct values, and indices by one sweep over them.
#pragma once

#include <string>
#include <vector>

#include "palettizer/distinct.h"
#include "palettizer/weight_palettizer.h"

namespace palettize {

// For ascending `values`, the index of the nearest of the ascending `entries` (lowest index on
// ties), by one forward sweep, four values at a time where the nearest entry stays.
void NearestSorted(const double* values, size_t n, const double* entries, uint64_t K,
                   std::vector<uint8_t>* idx);
void NearestSorted(const float* values, size_t n, const double* entries, uint64_t K,
                   std::vector<uint8_t>* idx);

// The general path's choice (PalettizeWeight, without per-channel scale) for ascending `values`:
// among the four entries around the value's place in the entries sorted by value, the smallest
// squared error, the lowest index on ties. For float64, whose squared errors can round to equal
// (or underflow to 0) where the errors differ, so that NearestSorted could choose otherwise.
void NearestLikeGeneral(const std::vector<double>& values, const double* entries, uint64_t K,
                        std::vector<uint8_t>* idx);

// Table t's distinct values (channels [t*G, (t+1)*G)) of a float16, bfloat16 or float32 weight, with
// their summed sensitivities when `sens`: a histogram of bit patterns for 16-bit floats, a sort
// for float32 and float64, in per-thread buffers. False when the group holds NaN or Inf.
bool GroupDistinct(const uint8_t* data, int dtype, const ChannelLayout& L, uint64_t G, uint64_t t,
                   const ElementWeights* sens, DistinctValues* d);

// A group's error sums, of the values as they are (float16, bfloat16, float32: never scaled).
struct GroupTotals {
  double sse = 0, max_err = 0, signal = 0, wsse = 0;
};

// A group's table of K entries from its distinct values `d` (ScalarTable, then FinishTable into
// lut, entries and, quantized, lut_scale and lut_offset), each distinct value's nearest entry
// (`nearest`), and the group's error sums from the counts.
GroupTotals GroupTable(const DistinctValues& d, const PalettizeConfig& cfg, int dtype, uint64_t K,
                       double* lut, double* entries, double* lut_scale, double* lut_offset,
                       std::vector<uint8_t>* nearest);

// Table t's indices: each element takes `nearest` of its distinct value in `d` (GroupDistinct's).
void GroupIndices(const uint8_t* data, int dtype, const ChannelLayout& L, uint64_t G, uint64_t t,
                  const DistinctValues& d, const std::vector<uint8_t>& nearest, uint8_t* indices);

// Frees a group's per-thread buffers once they hold more than a million values (a float32 tensor
// per tensor: half a gigabyte), so that they do not outlive the weight; small ones stay for reuse.
void ReleaseLarge(DistinctValues* d, std::vector<uint8_t>* nearest);

// Whether PalettizeWeightRaw takes FastScalar: cluster_dim 1 without per-channel scale, on
// float16, bfloat16 and float32, and on float64 outside unique mode (whose table would keep -0 or
// +0 as the general path's sort happens to leave them) with every magnitude inside FarExponent's
// safe range (the fast path's error sums are unscaled).
bool TakesFastPath(const uint8_t* data, const TensorShape& shape, const PalettizeConfig& cfg);

// PalettizeWeightRaw for the weights TakesFastPath accepts. Float64 totals are summed element by
// element in the general path's order, so that every output is its bits.
bool FastScalar(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                const std::vector<int>& allowed_nbits, bool keep_decoded, PalettizedWeight* out,
                std::string* reason, const ElementWeights* sensitivity);

}  // namespace palettize
