#include "palettizer/table.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mil/dtype.h"
#include "util/pow2.h"

namespace palettize {

namespace {

using MT = mil::DataType;

}  // namespace

double SmallestPositive(int mil_type) {
  switch (mil_type) {
    case MT::FLOAT16: return 0x1p-24;
    case MT::BFLOAT16: return 0x1p-133;
    case MT::FLOAT32: return 0x1p-149;
    default: return std::numeric_limits<double>::denorm_min();
  }
}

void QuantizeTable(double* entries, size_t n, LutDType type, int mil_type, double* scale, double* offset) {
  double lo = *std::min_element(entries, entries + n), hi = *std::max_element(entries, entries + n);
  if (type == LutDType::kInt8) {
    double m = std::max(std::fabs(lo), std::fabs(hi));
    *scale = RoundToDType(m > 0 ? m / 127.0 : 1.0, mil_type);
    if (*scale == 0) *scale = SmallestPositive(mil_type);
    *offset = 0;
    for (size_t j = 0; j < n; ++j)
      entries[j] = std::clamp(std::nearbyint(entries[j] / *scale), -128.0, 127.0);
  } else {
    lo = std::min(lo, 0.0);
    hi = std::max(hi, 0.0);
    *scale = RoundToDType(hi > lo ? (hi - lo) / 255.0 : 1.0, mil_type);
    if (*scale == 0) *scale = SmallestPositive(mil_type);
    *offset = std::clamp(std::nearbyint(-lo / *scale), 0.0, 255.0);
    for (size_t j = 0; j < n; ++j)
      entries[j] = std::clamp(std::nearbyint(entries[j] / *scale) + *offset, 0.0, 255.0);
  }
}

int UniqueNBits(size_t most, const std::vector<int>& allowed) {
  for (int b : allowed)
    if (most <= (size_t(1) << b)) return b;
  return 0;
}

void UniformTable(double lo, double hi, uint64_t K, double* table) {
  if (std::isfinite(double(K - 1) * (hi - lo))) {
    for (uint64_t j = 0; j < K; ++j) table[j] = lo + double(j) * (hi - lo) / double(K - 1);
    return;
  }
  const double half_span = hi / 2 - lo / 2;
  for (uint64_t j = 0; j < K; ++j) table[j] = 2 * (lo / 2 + double(j) / double(K - 1) * half_span);
}

Clustering1D SafeKMeans1D(const double* xs, const double* ws, size_t n, uint64_t K, bool counts) {
  const int ex = FarExponent(std::max(std::fabs(xs[0]), std::fabs(xs[n - 1])));
  const int ew = counts ? 0 : FarExponent(*std::max_element(ws, ws + n));
  if (ex == 0 && ew == 0) return OptimalKMeans1D(xs, ws, n, K);
  thread_local std::vector<double> sx, sw;
  sx.clear(), sw.clear();
  for (size_t v = 0; v < n; ++v) {
    const double x = std::ldexp(xs[v], -ex), w = std::ldexp(ws[v], -ew);
    if (!(w > 0)) continue;
    if (!sx.empty() && sx.back() == x)
      sw.back() += w;
    else
      sx.push_back(x), sw.push_back(w);
  }
  Clustering1D c = OptimalKMeans1D(sx.data(), sw.data(), sx.size(), K);
  for (double& centroid : c.centroids) centroid = std::ldexp(centroid, ex);
  return c;
}

size_t ScalarTable(const DistinctValues& d, const PalettizeConfig& cfg, uint64_t K, double* table) {
  if (cfg.mode == PalettizeMode::kUnique) {
    WithArrays(d, [&](const auto* values, const auto*, size_t n) { std::copy(values, values + n, table); });
    return d.size();
  }
  if (cfg.mode == PalettizeMode::kUniform) {
    WithArrays(d, [&](const auto* values, const auto*, size_t n) {
      UniformTable(values[0], values[n - 1], K, table);
    });
    return K;
  }
  if (d.packed.bytes.data()) {
    // Float32 values and counts: never beyond SafeKMeans1D's safe range, never weighted.
    const Clustering1D c = OptimalKMeans1D(d.packed.values(), d.packed.counts(), d.packed.size, K);
    std::copy(c.centroids.begin(), c.centroids.end(), table);
    return c.centroids.size();
  }
  // Weighted: values of total sensitivity 0 leave the problem (the DP needs positive weights);
  // when none is left, the plain table (whose counts are positive, short of per-channel scales
  // 2^537 apart, whose squared ratio underflows: those leave too). Copied only when some leave.
  const bool weighted = std::any_of(d.weights.begin(), d.weights.end(), [](double w) { return w > 0; });
  std::vector<double> ones;  // counts left empty are all 1 (DistinctValues); rare: no weight > 0
  if (!weighted && d.counts.empty()) ones.assign(d.values.size(), 1.0);
  const std::vector<double>& w = weighted ? d.weights : d.counts.empty() ? ones : d.counts;
  // Counts (whole numbers from 1 to n) are positive and in the safe range: no pass over them.
  const bool all_positive = !weighted || std::all_of(w.begin(), w.end(), [](double x) { return x > 0; });
  thread_local std::vector<double> xs, ws;
  xs.clear(), ws.clear();
  if (!all_positive)
    for (size_t v = 0; v < w.size(); ++v)
      if (w[v] > 0) xs.push_back(d.values[v]), ws.push_back(w[v]);
  Clustering1D c = all_positive ? SafeKMeans1D(d.values.data(), w.data(), d.values.size(), K, !weighted)
                                : SafeKMeans1D(xs.data(), ws.data(), xs.size(), K);
  std::copy(c.centroids.begin(), c.centroids.end(), table);
  return c.centroids.size();
}

void FinishTable(double* table, size_t used, uint64_t K, uint64_t D, const PalettizeConfig& cfg, int dtype,
                 double* entries, double* lut_scale, double* lut_offset) {
  for (size_t j = used; j < K; ++j)
    for (uint64_t d = 0; d < D; ++d) table[j * D + d] = table[(used - 1) * D + d];
  for (uint64_t e = 0; e < K * D; ++e) table[e] = RoundToDType(table[e], dtype);
  std::copy(table, table + K * D, entries);
  if (cfg.lut_dtype != LutDType::kFloat) {
    QuantizeTable(table, K * D, cfg.lut_dtype, dtype, lut_scale, lut_offset);
    for (uint64_t e = 0; e < K * D; ++e)
      entries[e] = RoundToDType(*lut_scale * (table[e] - *lut_offset), dtype);
  }
}

}  // namespace palettize
