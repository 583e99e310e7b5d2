// Palettizing one weight at several widths at once, for bit allocation (issue 14): the result at
// each width is PalettizeWeightRaw's with the config's nbits set to it, bit for bit, but the work
// every width shares is done once.
#pragma once

#include <string>
#include <vector>

#include "palettizer/weight_palettizer.h"

namespace palettize {

// The plan with its config's nbits set to `nbits`.
WeightPlan WithNBits(const WeightPlan& plan, int nbits);

// Palettizes `data` (as PalettizeWeightRaw) at each of `widths` (ascending; for unique mode, the
// widths the output can hold, of which it takes the smallest that fits: one result). `out[w]`
// equals PalettizeWeightRaw(data, shape, WithNBits(plan, widths[w]), widths, false, ...) except that
// without `keep_indices` its indices are left empty (tables, scales and totals are all there;
// FillIndices recovers them). Scalar tables without a per-channel scale on float16, bfloat16 and
// float32 weights read each group's distinct values (and sensitivities) once for every width; the
// rest converts the weight to doubles once and palettizes it per width.
bool PalettizeWeightSweep(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                          const std::vector<int>& widths, bool keep_indices,
                          std::vector<PalettizedWeight>* out, std::string* reason,
                          const ElementWeights* sensitivity = nullptr);

// Completes `p`, a sweep result at plan.config.nbits = p->nbits whose indices were not kept: its
// indices (and decoded values when asked), from the tables it holds, without clustering again when
// the sweep shared its groups (scalar tables, no per-channel scale, 16/32-bit floats); otherwise
// by palettizing again at its width. The result equals PalettizeWeightRaw's.
bool FillIndices(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan, bool keep_decoded,
                 PalettizedWeight* p, std::string* reason, const ElementWeights* sensitivity = nullptr);

}  // namespace palettize
