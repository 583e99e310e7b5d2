// A weight's candidates for bit allocation (issue 14 items 1, 2): each width the output can hold at
// the granularity its config gives, and kept uncompressed, with the bytes each is stored in (as
// compress writes it: packed indices, tables, LUT scales and offsets, per-channel scales, and in
// the iOS16 form the shape) and its cost. The palettized results stay with the candidates, so
// that writing the chosen one reuses its tables (FillIndices) instead of clustering again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettize/allocation.h"
#include "palettize/status.h"
#include "palettizer/weight_palettizer.h"
#include "safetensors/safetensors.h"

namespace palettize {

// How a palettized weight is stored: a package's LUT ops (encode/lut_ops.h) in either form, or a
// checkpoint's packed tensors (encode/packed_tensor.h), which compress also reports for a dense
// checkpoint output.
enum class StoredForm { kLutIOS16, kLutIOS18, kPacked };

struct SweepOptions {
  std::vector<int> widths;  // ascending; CandidateWidths
  StoredForm form = StoredForm::kLutIOS18;
  SafeDType packed_dtype = SafeDType::kF16;  // kPacked: the tensor's dtype
  uint64_t dense_bytes = 0;                  // the weight uncompressed, as stored (the report's bytes_before)
  // kSse: the candidate's sse. kSensitivity: its weighted_sse when the weight has sensitivities,
  // else its sse (a weight no sensitivity applies to keeps the plain error). kRelative: its sse
  // over the weight's mean square (RelativeCost).
  AllocationCost cost = AllocationCost::kSse;
  bool keep_indices = false;  // keep every width's indices (memory: one byte per element per width)
  // kLutIOS18 with a per-channel scale: the form compress will store (encode/lut_ops.h).
  PerChannelScaleForm scale_form = PerChannelScaleForm::kAuto;
};

// The widths a package output can hold: 1, 2, 4, 6, 8, and 3 when it targets iOS18 anyway. A
// checkpoint has no target: pass true.
std::vector<int> CandidateWidths(bool ios18);

struct WeightSweep {
  // Ascending bytes (ties: ascending cost), the last kept uncompressed. A width whose stored form
  // would not be smaller than the weight uncompressed is left out: compress would not write it.
  std::vector<AllocationCandidate> candidates;
  std::vector<PalettizedWeight> results;  // per candidate (the uncompressed one's empty)
  std::string note;                       // why only uncompressed, when the weight cannot be palettized
};

// AllocationCost::kRelative's cost of `p`, a weight of `elements` elements: elements x sse / sum w^2,
// from the ratio its snr_db keeps in double's range (sse and signal themselves may overflow); 0
// when every element decodes to its own value.
double RelativeCost(const PalettizedWeight& p, uint64_t elements);

// The bytes `p` (of a weight of `shape` planned as `plan`) is stored in.
uint64_t StoredBytes(const PalettizedWeight& p, const TensorShape& shape, const WeightPlan& plan,
                     const SweepOptions& options);

// Sweeps one weight (raw little-endian bytes, as PalettizeWeightRaw takes them) over
// options.widths: PalettizeWeightSweep, then each candidate's bytes and cost. A weight that cannot
// be palettized (NaN, too many unique values) gets only its uncompressed candidate, and `note`.
Status SweepWeight(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                   const ElementWeights* sensitivity, const SweepOptions& options, WeightSweep* out);

}  // namespace palettize
