// The fast path for scalar tables of float16, bfloat16 and float32 weights without per-channel
// scales: tables from each group's distinct values, and indices by one sweep over them.
#pragma once

#include <string>
#include <vector>

#include "palettizer/weight_palettizer.h"

namespace palettize {

// PalettizeWeightRaw for cluster_dim 1 without per-channel scale on float16, bfloat16 and float32.
bool FastScalar(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                const std::vector<int>& allowed_nbits, bool keep_decoded, PalettizedWeight* out,
                std::string* reason, const ElementWeights* sensitivity);

}  // namespace palettize
