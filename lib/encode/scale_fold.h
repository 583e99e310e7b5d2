// Folding a per-channel scale into the LUT (iOS18 only), the form coremltools PR #2688 emits
// because the Neural Engine on macOS 26 rejects constexpr_lut_to_dense wrapped by
// constexpr_blockwise_shift_scale at load (README "Device caveats").
//
// The scale s has the weight's shape with d_a = 1 (channel axis a): one value per position off
// the channel axis. The folded LUT has one table per (table t, position): shape
// [g_0 .. g_{r-1}, K, 1] with g_a = T and g_j = d_j for j != a, and entry
// round_DT(s(p) * lut[t][k]) -- the same product the wrapper rounds once at decode time, so the
// tensor decodes to the same bits. Laid out as [outer, T, inner, K] in the [outer, C, inner] view.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettizer/weight_palettizer.h"

namespace palettize {

struct FoldedLut {
  std::vector<uint64_t> shape;  // [g_0 .. g_{r-1}, K, 1]
  std::vector<double> lut;      // entries, each exact in the weight's dtype
};

// The table entries of `p` as floats of `mil_type` (quantized LUTs: round(scale * (q - offset))).
std::vector<double> FloatLutEntries(const PalettizedWeight& p, int mil_type);

// Folds p's channel scale into its tables for a weight of `dims` and `mil_type`. Returns false with
// `reason` when it cannot, or when some element of the folded form would not decode to exactly
// the value the wrapper form decodes to (checked per element, bit for bit, against p.decoded when
// filled, else against round(s * entry)).
bool FoldChannelScale(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type,
                      FoldedLut* out, std::string* reason);

// Bytes of the folded form: packed indices and the folded tables.
uint64_t FoldedBytes(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type);

}  // namespace palettize
