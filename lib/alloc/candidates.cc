#include "alloc/candidates.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "encode/lut_ops.h"
#include "encode/packed_tensor.h"
#include "palettizer/sweep.h"

namespace palettize {

std::vector<int> CandidateWidths(bool ios18) {
  return ios18 ? std::vector<int>{1, 2, 3, 4, 6, 8} : std::vector<int>{1, 2, 4, 6, 8};
}

double RelativeCost(const PalettizedWeight& p, uint64_t elements) {
  if (std::isinf(p.snr_db)) return 0;
  // Direct when both sums are finite (the ratio exact to rounding); else from the SNR.
  if (p.signal > 0 && std::isfinite(p.signal) && std::isfinite(p.sse))
    return double(elements) * (p.sse / p.signal);
  return double(elements) * std::pow(10.0, -p.snr_db / 10.0);
}

uint64_t StoredBytes(const PalettizedWeight& p, const TensorShape& shape, const WeightPlan& plan,
                     const SweepOptions& options) {
  if (options.form == StoredForm::kPacked) return PackedTensorBytes(options.packed_dtype, shape, plan, p);
  return LutEncodedBytes(p, shape.dims, shape.mil_type, plan.config.lut_dtype,
                         options.form == StoredForm::kLutIOS18 ? LutForm::kIOS18 : LutForm::kIOS16,
                         options.scale_form);
}

Status SweepWeight(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                   const ElementWeights* sensitivity, const SweepOptions& options, WeightSweep* out) {
  if (options.widths.empty()) return Status::InvalidArgument("bit allocation: no widths to sweep");
  WeightSweep s;
  std::vector<PalettizedWeight> results;
  if (!PalettizeWeightSweep(data, shape, plan, options.widths, options.keep_indices, &results, &s.note,
                            sensitivity))
    results.clear();
  const bool weighted = options.cost == AllocationCost::kSensitivity && sensitivity &&
                        plan.config.mode == PalettizeMode::kKMeans;
  std::vector<AllocationCandidate> candidates;
  std::vector<PalettizedWeight> kept;
  for (PalettizedWeight& p : results) {
    AllocationCandidate c;
    c.nbits = p.nbits;
    c.bytes = StoredBytes(p, shape, plan, options);
    if (c.bytes >= options.dense_bytes) continue;
    c.sse = p.sse;
    c.cost = options.cost == AllocationCost::kRelative ? RelativeCost(p, shape.elements)
             : weighted                                ? p.weighted_sse
                                                       : p.sse;
    c.snr_db = p.snr_db;
    candidates.push_back(c);
    kept.push_back(std::move(p));
  }
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return candidates[a].bytes != candidates[b].bytes ? candidates[a].bytes < candidates[b].bytes
                                                      : candidates[a].cost < candidates[b].cost;
  });
  for (size_t k : order) {
    s.candidates.push_back(candidates[k]);
    s.results.push_back(std::move(kept[k]));
  }
  AllocationCandidate dense;
  dense.bytes = options.dense_bytes;
  dense.snr_db = INFINITY;
  s.candidates.push_back(dense);
  s.results.emplace_back();
  *out = std::move(s);
  return Status::OK();
}

}  // namespace palettize
