#include "palettizer/sweep.h"

#include <algorithm>

#include <tbb/parallel_for.h>

#include "MIL.pb.h"

#include "mil/dtype.h"
#include "mil/tensor_data.h"
#include "palettizer/fast_path.h"
#include "palettizer/totals.h"

namespace palettize {

namespace {

using MT = mil::DataType;

// Whether PalettizeWeightRaw takes the fast path for this plan: then groups are shared.
bool Shared(const TensorShape& shape, const PalettizeConfig& cfg) {
  return cfg.mode != PalettizeMode::kUnique && cfg.cluster_dim == 1 && !cfg.enable_per_channel_scale &&
         (shape.mil_type == MT::FLOAT16 || shape.mil_type == MT::BFLOAT16 || shape.mil_type == MT::FLOAT32);
}

}  // namespace

WeightPlan WithNBits(const WeightPlan& plan, int nbits) {
  WeightPlan p = plan;
  p.config.nbits = nbits;
  return p;
}

bool PalettizeWeightSweep(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                          const std::vector<int>& widths, bool keep_indices,
                          std::vector<PalettizedWeight>* out, std::string* reason,
                          const ElementWeights* sensitivity) {
  const PalettizeConfig& cfg = plan.config;
  out->clear();
  if (cfg.mode == PalettizeMode::kUnique) {
    out->resize(1);
    if (!PalettizeWeightRaw(data, shape, plan, widths, false, &(*out)[0], reason, sensitivity)) return false;
    if (!keep_indices) std::vector<uint8_t>().swap((*out)[0].indices);
    return true;
  }
  if (!Shared(shape, cfg) && TakesFastPath(data, shape, cfg)) {
    // Float64: each width through the fast path from the raw data (its distinct values found again
    // per width), never the general path's 32 bytes an element.
    out->resize(widths.size());
    for (size_t w = 0; w < widths.size(); ++w) {
      PalettizedWeight& p = (*out)[w];
      if (!PalettizeWeightRaw(data, shape, WithNBits(plan, widths[w]), widths, false, &p, reason,
                              sensitivity))
        return false;
      if (!keep_indices) std::vector<uint8_t>().swap(p.indices);
    }
    return true;
  }
  if (!Shared(shape, cfg)) {
    std::vector<double> values(shape.elements);
    for (uint64_t e = 0; e < shape.elements; ++e) values[e] = ElementAsDouble(data, shape.mil_type, e);
    out->resize(widths.size());
    for (size_t w = 0; w < widths.size(); ++w) {
      PalettizedWeight& p = (*out)[w];
      if (!PalettizeWeight(values, shape, WithNBits(plan, widths[w]), widths, &p, reason, sensitivity))
        return false;
      std::vector<double>().swap(p.decoded);
      if (!keep_indices) std::vector<uint8_t>().swap(p.indices);
    }
    return true;
  }

  // The fast path's work (fast_path.cc) with the group loop outside the width loop: each group's
  // distinct values are read once and give every width's table, nearest entries and totals.
  const int dtype = shape.mil_type;
  const ChannelLayout L(shape, plan.channel_axis);
  const uint64_t G = plan.group_size;
  const uint64_t tables = L.channels / G;
  const size_t W = widths.size();
  const bool quantized = cfg.lut_dtype != LutDType::kFloat;
  const ElementWeights* sens = cfg.mode == PalettizeMode::kKMeans ? sensitivity : nullptr;
  std::vector<PalettizedWeight> ps(W);
  std::vector<std::vector<double>> entries(W);
  for (size_t w = 0; w < W; ++w) {
    PalettizedWeight& p = ps[w];
    p.nbits = widths[w];
    p.channel_axis = plan.channel_axis;
    p.tables = tables;
    const uint64_t K = uint64_t(1) << p.nbits;
    p.lut.assign(tables * K, 0.0);
    entries[w].resize(tables * K);
    p.indices_shape = shape.dims;
    if (keep_indices) p.indices.assign(shape.elements, 0);
    if (quantized) p.lut_scale.assign(tables, 0.0), p.lut_offset.assign(tables, 0.0);
  }
  std::vector<GroupTotals> totals(W * tables);
  std::vector<char> finite(tables, 1);
  tbb::parallel_for(uint64_t(0), tables, [&](uint64_t t) {
    thread_local std::vector<uint8_t> nearest;
    thread_local DistinctValues d;
    finite[t] = GroupDistinct(data, dtype, L, G, t, sens, &d);
    if (!finite[t]) return;
    for (size_t w = 0; w < W; ++w) {
      PalettizedWeight& p = ps[w];
      const uint64_t K = uint64_t(1) << p.nbits;
      totals[w * tables + t] =
          GroupTable(d, cfg, dtype, K, &p.lut[t * K], &entries[w][t * K],
                     quantized ? &p.lut_scale[t] : nullptr, quantized ? &p.lut_offset[t] : nullptr, &nearest);
      if (keep_indices) GroupIndices(data, dtype, L, G, t, d, nearest, p.indices.data());
    }
    ReleaseLarge(&d, &nearest);
  });
  if (std::find(finite.begin(), finite.end(), 0) != finite.end()) {
    *reason = "holds NaN or Inf values";
    return false;
  }
  for (size_t w = 0; w < W; ++w) {
    // Summed in group order, as FastScalar does, so the totals are its bits.
    GroupTotals sum;
    for (uint64_t t = 0; t < tables; ++t) {
      const GroupTotals& g = totals[w * tables + t];
      sum.sse += g.sse, sum.signal += g.signal, sum.wsse += g.wsse;
      sum.max_err = std::max(sum.max_err, g.max_err);
    }
    if (!SetTotals(sum.sse, sum.signal, sum.max_err, sum.wsse, 0, sens ? sens->exponent : 0, 0, &ps[w],
                   reason))
      return false;
  }
  *out = std::move(ps);
  return true;
}

bool FillIndices(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan, bool keep_decoded,
                 PalettizedWeight* p, std::string* reason, const ElementWeights* sensitivity) {
  const PalettizeConfig& cfg = plan.config;
  if (!Shared(shape, cfg)) {
    PalettizedWeight again;
    if (!PalettizeWeightRaw(data, shape, WithNBits(plan, p->nbits), {p->nbits}, keep_decoded, &again, reason,
                            sensitivity))
      return false;
    *p = std::move(again);
    return true;
  }
  // The entries as Core ML decompresses them (FinishTable's), from the stored tables.
  const int dtype = shape.mil_type;
  const ChannelLayout L(shape, plan.channel_axis);
  const uint64_t G = plan.group_size;
  const uint64_t K = uint64_t(1) << p->nbits;
  std::vector<double> entries(p->lut);
  if (cfg.lut_dtype != LutDType::kFloat)
    for (uint64_t e = 0; e < entries.size(); ++e)
      entries[e] = RoundToDType(p->lut_scale[e / K] * (p->lut[e] - p->lut_offset[e / K]), dtype);
  p->indices.assign(shape.elements, 0);
  if (keep_decoded) p->decoded.assign(shape.elements, 0.0);
  tbb::parallel_for(uint64_t(0), p->tables, [&](uint64_t t) {
    thread_local std::vector<uint8_t> nearest;
    thread_local DistinctValues d;
    GroupDistinct(data, dtype, L, G, t, nullptr, &d);  // finite: the sweep checked
    WithArrays(d, [&](const auto* values, const auto*, size_t n) {
      NearestSorted(values, n, &entries[t * K], K, &nearest);
    });
    GroupIndices(data, dtype, L, G, t, d, nearest, p->indices.data());
    if (keep_decoded)
      for (uint64_t o = 0; o < L.outer; ++o) {
        const uint64_t base = L.Offset(o, t * G, 0);
        for (uint64_t e = 0; e < G * L.inner; ++e)
          p->decoded[base + e] = entries[t * K + p->indices[base + e]];
      }
    ReleaseLarge(&d, &nearest);
  });
  return true;
}

}  // namespace palettize
