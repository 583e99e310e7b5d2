#include "palettizer/fast_path.h"

#include <algorithm>
#include <cmath>

#include <tbb/parallel_for.h>

#include "palettizer/distinct.h"
#include "palettizer/table.h"
#include "palettizer/totals.h"
#include "util/half.h"

namespace palettize {

namespace {

using MT = mil::DataType;

// For ascending `values`, the index of the nearest of the ascending `entries` (lowest index on
// ties), by one forward sweep.
void NearestSorted(const std::vector<double>& values, const double* entries, uint64_t K,
                   std::vector<uint8_t>* idx) {
  idx->resize(values.size());
  uint64_t j = 0;
  for (size_t v = 0; v < values.size(); ++v) {
    const double x = values[v];
    // Through equal entries too (rounding to the dtype can merge neighbours, e.g. uniform entries
    // on float16 subnormals): stopping at the first would leave every larger value there.
    while (j + 1 < K && std::fabs(x - entries[j + 1]) <= std::fabs(x - entries[j])) ++j;
    // A tie with an earlier, equal-distance entry below keeps the lower index.
    uint64_t best = j;
    while (best > 0 && std::fabs(x - entries[best - 1]) <= std::fabs(x - entries[best])) --best;
    (*idx)[v] = uint8_t(best);
  }
}

}  // namespace

bool FastScalar(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                const std::vector<int>& allowed_nbits, bool keep_decoded, PalettizedWeight* out,
                std::string* reason, const ElementWeights* sensitivity) {
  const PalettizeConfig& cfg = plan.config;
  const int dtype = shape.mil_type;
  // 16-bit floats go through a histogram of their bit patterns.
  const bool half = dtype == MT::FLOAT16 || dtype == MT::BFLOAT16;
  const Float16Format& format = dtype == MT::FLOAT16 ? kHalfFormat : kBFloat16Format;
  const Layout L(shape, plan.channel_axis);
  const uint64_t G = plan.group_size;
  const uint64_t tables = L.channels / G;
  // Groups are independent: they run in parallel, each writing only its own slots, and the
  // totals are summed in group order afterwards, so any thread count gives the same bytes. A
  // group's distinct values live only while it is worked on (per thread), never all at once.
  // Sensitivities matter to k-means tables only.
  const ElementWeights* sens = cfg.mode == PalettizeMode::kKMeans ? sensitivity : nullptr;
  auto distinct = [&](uint64_t t, Distinct* d) {
    thread_local std::vector<uint32_t> hist;
    thread_local std::vector<uint64_t> seen;
    thread_local std::vector<double> whist, sbuf;
    thread_local std::vector<float> buf;
    thread_local std::vector<Repeat> repeats;
    if (half) hist.resize(65536, 0u), seen.resize(1024, 0u);
    if (half && sens) whist.resize(65536, 0.0);
    const uint64_t c0 = t * G, c1 = (t + 1) * G;
    if (half)
      return DistinctHalf(format, reinterpret_cast<const uint16_t*>(data), L, c0, c1, hist, seen, sens, whist,
                          sbuf, d);
    if (sens)
      return DistinctFloatWeighted(reinterpret_cast<const float*>(data), L, c0, c1, *sens, buf, sbuf, repeats,
                                   d);
    return DistinctFloat(reinterpret_cast<const float*>(data), L, c0, c1, buf, d);
  };
  std::vector<char> finite(tables, 1);
  int nbits = cfg.nbits;
  if (cfg.mode == PalettizeMode::kUnique) {
    // The table size depends on the largest group: a first pass counts.
    std::vector<size_t> sizes(tables, 0);
    tbb::parallel_for(uint64_t(0), tables, [&](uint64_t t) {
      thread_local Distinct d;
      finite[t] = distinct(t, &d);
      sizes[t] = d.values.size();
    });
    if (std::find(finite.begin(), finite.end(), 0) != finite.end()) {
      *reason = "holds NaN or Inf values";
      return false;
    }
    const size_t most = *std::max_element(sizes.begin(), sizes.end());
    nbits = UniqueNBits(most, allowed_nbits);
    if (nbits == 0) {
      *reason = std::to_string(most) + " unique values" + (tables > 1 ? " in a group" : "") + ", more than " +
                std::to_string(1 << allowed_nbits.back()) + " fit a table";
      return false;
    }
  }
  PalettizedWeight p;
  p.nbits = nbits;
  p.channel_axis = plan.channel_axis;
  p.tables = tables;
  const uint64_t K = uint64_t(1) << nbits;
  p.lut.assign(tables * K, 0.0);
  std::vector<double> entries(tables * K);
  p.indices_shape = shape.dims;
  p.indices.assign(shape.elements, 0);
  if (keep_decoded) p.decoded.assign(shape.elements, 0.0);
  if (cfg.lut_dtype != LutDType::kFloat) {
    p.lut_scale.assign(tables, 0.0);
    p.lut_offset.assign(tables, 0.0);
  }
  std::vector<double> sse(tables, 0.0), max_err(tables, 0.0), signal(tables, 0.0), wsse(tables, 0.0);
  tbb::parallel_for(uint64_t(0), tables, [&](uint64_t t) {
    thread_local std::vector<uint8_t> map16;
    thread_local std::vector<uint8_t> nearest;
    thread_local Distinct d;
    if (half) map16.resize(65536);
    finite[t] = distinct(t, &d);
    if (!finite[t]) return;
    const bool quantized = cfg.lut_dtype != LutDType::kFloat;
    const size_t used = ScalarTable(d, cfg, K, &p.lut[t * K]);
    FinishTable(&p.lut[t * K], used, K, 1, cfg, dtype, &entries[t * K], quantized ? &p.lut_scale[t] : nullptr,
                quantized ? &p.lut_offset[t] : nullptr);
    const double* ent = &entries[t * K];
    // Error totals from the distinct values and their counts: no second pass over the elements.
    NearestSorted(d.values, ent, K, &nearest);
    double group_sse = 0, group_max = 0, group_signal = 0, group_wsse = 0;
    for (size_t v = 0; v < d.values.size(); ++v) {
      const double diff = d.values[v] - ent[nearest[v]];
      group_sse += d.counts[v] * diff * diff;
      group_max = std::max(group_max, std::fabs(diff));
      group_signal += d.counts[v] * d.values[v] * d.values[v];
      if (!d.weights.empty()) group_wsse += d.weights[v] * diff * diff;
    }
    sse[t] = group_sse, max_err[t] = group_max, signal[t] = group_signal, wsse[t] = group_wsse;
    const uint64_t run = G * L.inner;
    if (half) {
      // Map every bit pattern present to its index, then one pass over the elements.
      for (size_t v = 0; v < d.bits.size(); ++v) map16[d.bits[v]] = nearest[v];
      map16[0x8000] = map16[0];
      const uint16_t* w = reinterpret_cast<const uint16_t*>(data);
      for (uint64_t o = 0; o < L.outer; ++o) {
        const uint64_t base = L.Offset(o, t * G, 0);
        for (uint64_t e = 0; e < run; ++e) p.indices[base + e] = map16[w[base + e]];
      }
    } else {
      const float* w = reinterpret_cast<const float*>(data);
      for (uint64_t o = 0; o < L.outer; ++o) {
        const uint64_t base = L.Offset(o, t * G, 0);
        for (uint64_t e = 0; e < run; ++e) {
          const double x = w[base + e];
          size_t pos = size_t(std::lower_bound(d.values.begin(), d.values.end(), x) - d.values.begin());
          p.indices[base + e] = nearest[pos];
        }
      }
    }
    if (keep_decoded)
      for (uint64_t o = 0; o < L.outer; ++o) {
        const uint64_t base = L.Offset(o, t * G, 0);
        for (uint64_t e = 0; e < run; ++e) p.decoded[base + e] = ent[p.indices[base + e]];
      }
  });
  if (std::find(finite.begin(), finite.end(), 0) != finite.end()) {
    *reason = "holds NaN or Inf values";
    return false;
  }
  double total_sse = 0, total_signal = 0, total_max = 0, total_wsse = 0;
  for (uint64_t t = 0; t < tables; ++t) {
    total_sse += sse[t];
    total_max = std::max(total_max, max_err[t]);
    total_signal += signal[t];
    total_wsse += wsse[t];
  }
  // float16, bfloat16 and float32 values never need scaling (E = 0); sensitivities may.
  if (!SetTotals(total_sse, total_signal, total_max, total_wsse, 0, sens ? sens->exponent : 0, 0, &p, reason))
    return false;
  *out = std::move(p);
  return true;
}

}  // namespace palettize
