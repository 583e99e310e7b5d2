#include "palettizer/weight_palettizer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "MIL.pb.h"

#include "cluster/kmeans_vector.h"
#include "cluster/nearest_vector.h"
#include "mil/dtype.h"
#include "mil/tensor_data.h"
#include "palettizer/distinct.h"
#include "palettizer/fast_path.h"
#include "palettizer/sensitivity_window.h"
#include "palettizer/table.h"
#include "palettizer/totals.h"
#include "util/half.h"
#include "util/pow2.h"

namespace palettize {

namespace {

// The largest magnitude among x[0..n) into *largest, and whether every value is finite. Four
// running maxima: one, chained through memory (the caller's lambdas capture it), was a fifth of
// PalettizeWeight's own time on vector tables.
bool FiniteLargest(const double* x, size_t n, double* largest) {
  double m[4] = {0, 0, 0, 0};
  bool finite = true;
  size_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (size_t l = 0; l < 4; ++l) {
      const double a = std::fabs(x[i + l]);
      finite &= a <= std::numeric_limits<double>::max();  // false for NaN too
      m[l] = a > m[l] ? a : m[l];
    }
  for (; i < n; ++i) {
    const double a = std::fabs(x[i]);
    finite &= a <= std::numeric_limits<double>::max();
    m[0] = a > m[0] ? a : m[0];
  }
  *largest = std::max(std::max(m[0], m[1]), std::max(m[2], m[3]));
  return finite;
}

}  // namespace

bool PalettizeWeight(const std::vector<double>& values, const TensorShape& shape, const WeightPlan& plan,
                     const std::vector<int>& allowed_nbits, PalettizedWeight* out, std::string* reason,
                     const ElementWeights* sensitivity, bool keep_decoded) {
  const PalettizeConfig& cfg = plan.config;
  const int dtype = shape.mil_type;
  const int axis = plan.channel_axis;
  const uint64_t D = uint64_t(cfg.cluster_dim);
  const ChannelLayout L(shape, axis);
  const uint64_t G = plan.group_size;
  const uint64_t tables = L.channels / G;
  double largest = 0;
  if (!FiniteLargest(values.data(), values.size(), &largest)) {
    *reason = "holds NaN or Inf values";
    return false;
  }
  // Errors are compared and summed on values times 2^-E (pow2.h): 1 for every float16/float32
  // weight; float64 ones beyond 2^256 or below 2^-256 come to ~1, so squares neither overflow
  // nor underflow.
  const int E = FarExponent(largest);
  auto down = [E](double v) { return E == 0 ? v : std::ldexp(v, -E); };

  // Sensitivities matter to k-means tables only (uniform and unique tables ignore them).
  const bool weighted = sensitivity && cfg.mode == PalettizeMode::kKMeans;
  // A group's elements lie in runs of G x inner (one per outer index), which its loops read in
  // rising order, cluster_dim rows of inner elements together: a window is a run, or 16K elements
  // of a longer one, and never less than cluster_dim rows.
  SensitivityWindow sens(sensitivity, values.size(),
                         std::max(D * L.inner, std::min<uint64_t>(G * L.inner, uint64_t(1) << 14)));

  PalettizedWeight p;
  p.cluster_dim = int(D);
  p.channel_axis = axis;
  p.tables = tables;

  // Per-channel scale, reduced over the channel axis in the weight's dtype (exact: a max).
  std::vector<double> scale(L.outer * L.inner, 1.0);
  if (cfg.enable_per_channel_scale) {
    for (uint64_t o = 0; o < L.outer; ++o)
      for (uint64_t i = 0; i < L.inner; ++i) {
        double m = 0;
        for (uint64_t c = 0; c < L.channels; ++c) m = std::max(m, std::fabs(values[L.Offset(o, c, i)]));
        scale[o * L.inner + i] = m == 0 ? 1.0 : m;
      }
    p.channel_scale = scale;
    p.scale_shape = shape.dims;
    p.scale_shape[size_t(axis)] = 1;
  }
  auto s_at = [&](uint64_t o, uint64_t i) { return scale[o * L.inner + i]; };
  // The clustering weighs an element by s^2, relative to the others: with scales beyond the safe
  // range, by (s * 2^-Es)^2.
  const int Es = FarExponent(*std::max_element(scale.begin(), scale.end()));
  // What the decompressed element is for table entry value `e` at position (o, i).
  auto final_value = [&](double e, uint64_t o, uint64_t i) {
    return cfg.enable_per_channel_scale ? RoundToDType(s_at(o, i) * e, dtype) : e;
  };
  // The value clustered for an element: the weight, or its normalised form. Unique mode needs
  // values in the dtype (it promises exact tables); the others cluster the exact ratio and weight
  // it by s^2, because (w - s*c)^2 = s^2 (w/s - c)^2: that makes the per-channel-scale objective
  // exactly the final error.
  const bool unique = cfg.mode == PalettizeMode::kUnique;
  auto norm = [&](double w, uint64_t o, uint64_t i) {
    if (!cfg.enable_per_channel_scale) return w;
    double x = w / s_at(o, i);
    return unique ? RoundToDType(x, dtype) : x;
  };

  // 1. Choose nbits (unique mode: the smallest allowed width holding every group's values).
  int nbits = cfg.nbits;
  std::vector<std::vector<double>> unique_tables;
  if (unique) {
    size_t most = 0;
    for (uint64_t t = 0; t < tables; ++t) {
      std::vector<std::vector<double>> vecs;
      for (uint64_t o = 0; o < L.outer; ++o)
        for (uint64_t c = t * G; c < (t + 1) * G; c += D)
          for (uint64_t i = 0; i < L.inner; ++i) {
            std::vector<double> v(D);
            for (uint64_t d = 0; d < D; ++d) v[d] = norm(values[L.Offset(o, c + d, i)], o, i);
            vecs.push_back(std::move(v));
          }
      std::sort(vecs.begin(), vecs.end());
      vecs.erase(std::unique(vecs.begin(), vecs.end()), vecs.end());
      most = std::max(most, vecs.size());
      std::vector<double> flat;
      for (auto& v : vecs) flat.insert(flat.end(), v.begin(), v.end());
      unique_tables.push_back(std::move(flat));
    }
    nbits = 0;
    for (int b : allowed_nbits)
      if (most <= (size_t(1) << b)) {
        nbits = b;
        break;
      }
    if (nbits == 0) {
      *reason = std::to_string(most) + " unique values" + (tables > 1 ? " in a group" : "") + ", more than " +
                std::to_string(1 << allowed_nbits.back()) + " fit a table";
      return false;
    }
  }
  p.nbits = nbits;
  const uint64_t K = uint64_t(1) << nbits;
  p.lut.assign(tables * K * D, 0.0);

  // 2. Build each table, then round or quantize it.
  std::vector<double> entries(p.lut.size());
  if (cfg.lut_dtype != LutDType::kFloat) {
    p.lut_scale.assign(tables, 0.0);
    p.lut_offset.assign(tables, 0.0);
  }
  for (uint64_t t = 0; t < tables; ++t) {
    double* table = &p.lut[t * K * D];
    size_t used = 0;
    if (unique) {
      const auto& u = unique_tables[t];
      std::copy(u.begin(), u.end(), table);
      used = u.size() / D;
    } else if (D == 1) {
      std::vector<WeightedPoint> pts;
      pts.reserve(L.outer * G * L.inner);
      for (uint64_t o = 0; o < L.outer; ++o)
        for (uint64_t c = t * G; c < (t + 1) * G; ++c)
          for (uint64_t i = 0; i < L.inner; ++i) {
            const double s = std::ldexp(s_at(o, i), -Es);
            const uint64_t off = L.Offset(o, c, i);
            pts.push_back({norm(values[off], o, i), s * s, weighted ? sens.at(off) : 0.0});
          }
      DistinctValues d;
      MergePoints(pts, weighted, &d);
      used = ScalarTable(d, cfg, K, table);
    } else {
      // With sensitivities, a vector weighs the sum of its elements' (coremltools' SKM rule).
      std::vector<double> pts, vector_weights;
      pts.reserve(L.outer * G * L.inner);
      if (weighted) vector_weights.reserve(L.outer * G * L.inner / D);
      for (uint64_t o = 0; o < L.outer; ++o)
        for (uint64_t c = t * G; c < (t + 1) * G; c += D)
          for (uint64_t i = 0; i < L.inner; ++i) {
            double weight = 0;
            for (uint64_t d = 0; d < D; ++d) {
              pts.push_back(norm(values[L.Offset(o, c + d, i)], o, i));
              if (weighted) weight += sens.at(L.Offset(o, c + d, i));
            }
            if (weighted) vector_weights.push_back(weight);
          }
      VectorKMeansOptions opt;
      opt.seed = t;
      opt.labels = false;  // step 3 assigns entries
      // Large tables of a grouped weight: one seeded run each. The weight's error sums many
      // tables, so the spread between runs averages out (issue 16: one run is within 1% of the
      // best of four per weight, and below coremltools' on every weight measured), at a quarter
      // of the cost.
      if (tables > 1 && K >= 64) opt.restarts = 1;
      // Scaled by a power of two when beyond the safe range, as SafeKMeans1D does, and also when
      // beyond the float range vector k-means compares distances in (past 2^60 their squares
      // overflow float; below 2^-60 they lose their digits): float64 weights of 1e40 had come
      // out at an SNR of 0.2 dB where the same weights at 1 take 8.3 dB.
      double most = 0;
      FiniteLargest(pts.data(), pts.size(), &most);
      int ev = FarExponent(most);
      if (ev == 0 && most > 0 && (most >= 0x1p60 || most < 0x1p-60)) std::frexp(most, &ev);
      if (ev != 0)
        for (double& x : pts) x = std::ldexp(x, -ev);
      VectorClustering vc =
          !weighted ? VectorKMeans(pts.data(), pts.size() / D, D, K, opt)
                    : WeightedVectorKMeans(pts.data(), vector_weights.data(), pts.size() / D, D, K, opt);
      for (double& x : vc.centroids) x = std::ldexp(x, ev);
      std::copy(vc.centroids.begin(), vc.centroids.end(), table);
      used = vc.centroids.size() / D;
    }
    const bool quantized = cfg.lut_dtype != LutDType::kFloat;
    FinishTable(table, used, K, D, cfg, dtype, &entries[t * K * D], quantized ? &p.lut_scale[t] : nullptr,
                quantized ? &p.lut_offset[t] : nullptr);
  }

  // 3. Assign every element (vector) the entry with the smallest final error, and decode.
  p.indices_shape = shape.dims;
  p.indices_shape[size_t(axis)] /= D;
  p.indices.assign(shape.elements / D, 0);
  if (keep_decoded) p.decoded.assign(shape.elements, 0.0);
  double sse = 0, signal = 0, max_err = 0, wsse = 0;  // of the values times 2^-E
  for (uint64_t t = 0; t < tables; ++t) {
    const double* ent = &entries[t * K * D];
    // Scalar tables: entries sorted, for a binary search; vector tables: exhaustive.
    std::vector<uint32_t> order(K);
    std::iota(order.begin(), order.end(), 0u);
    if (D == 1)
      std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ent[a] < ent[b]; });
    std::vector<double> sorted(K);
    for (uint64_t j = 0; j < K; ++j) sorted[j] = ent[order[j] * D];
    // Vector tables without per-channel scales decode to their entries everywhere: an exact
    // nearest-entry search gives what trying every entry gives (nearest_vector.h).
    std::vector<double> decoded_entries;
    for (uint64_t j = 0; D > 1 && !cfg.enable_per_channel_scale && j < K * D; ++j)
      decoded_entries.push_back(down(ent[j]));
    const NearestVector nearest(decoded_entries.empty() ? ent : decoded_entries.data(), K, D);
    // Those searches a run of inner vectors at a time (the values are finite: checked above).
    std::vector<double> queries(decoded_entries.empty() ? 0 : L.inner * D);
    std::vector<uint32_t> chosen(decoded_entries.empty() ? 0 : L.inner);
    for (uint64_t o = 0; o < L.outer; ++o)
      for (uint64_t c = t * G; c < (t + 1) * G; c += D) {
        if (!decoded_entries.empty()) {
          for (uint64_t i = 0; i < L.inner; ++i)
            for (uint64_t d = 0; d < D; ++d) queries[i * D + d] = down(values[L.Offset(o, c + d, i)]);
          nearest.Many(queries.data(), L.inner, chosen.data());
        }
        for (uint64_t i = 0; i < L.inner; ++i) {
          uint32_t best = 0;
          double best_err = std::numeric_limits<double>::infinity();
          auto consider = [&](uint32_t j) {
            double err = 0;
            for (uint64_t d = 0; d < D; ++d) {
              double diff = down(values[L.Offset(o, c + d, i)]) - down(final_value(ent[j * D + d], o, i));
              err += diff * diff;
            }
            if (err < best_err || (err == best_err && j < best)) best_err = err, best = j;
          };
          if (D == 1) {
            double x = values[L.Offset(o, c, i)] / s_at(o, i);
            size_t pos = size_t(std::lower_bound(sorted.begin(), sorted.end(), x) - sorted.begin());
            for (size_t q = pos > 1 ? pos - 2 : 0; q < std::min<size_t>(K, pos + 2); ++q) consider(order[q]);
          } else if (!decoded_entries.empty()) {
            best = chosen[i];
          } else {
            for (uint32_t j = 0; j < K; ++j) consider(j);
          }
          // Index position: the element's position with the channel divided by D.
          uint64_t idx = (o * (L.channels / D) + c / D) * L.inner + i;
          p.indices[idx] = uint8_t(best);
          for (uint64_t d = 0; d < D; ++d) {
            uint64_t off = L.Offset(o, c + d, i);
            double f = final_value(ent[best * D + d], o, i);
            if (keep_decoded) p.decoded[off] = f;
            const double x = down(values[off]);
            double diff = x - down(f);
            sse += diff * diff;
            if (weighted) wsse += sens.at(off) * diff * diff;
            max_err = std::max(max_err, std::fabs(diff));
            signal += x * x;
          }
        }
      }
  }
  if (!SetTotals(sse, signal, max_err, wsse, E, weighted ? sensitivity->exponent : 0, largest, &p, reason))
    return false;
  *out = std::move(p);
  return true;
}

bool PalettizeWeightRaw(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                        const std::vector<int>& allowed_nbits, bool keep_decoded, PalettizedWeight* out,
                        std::string* reason, const ElementWeights* sensitivity) {
  const PalettizeConfig& cfg = plan.config;
  if (TakesFastPath(data, shape, cfg))
    return FastScalar(data, shape, plan, allowed_nbits, keep_decoded, out, reason, sensitivity);
  std::vector<double> values(shape.elements);
  if (shape.mil_type == mil::DataType::FLOAT16) {
    for (uint64_t e = 0; e < shape.elements; ++e) {
      uint16_t h;
      std::memcpy(&h, data + 2 * e, 2);
      values[e] = HalfToFloat(h);
    }
  } else {
    for (uint64_t e = 0; e < shape.elements; ++e) values[e] = ElementAsDouble(data, shape.mil_type, e);
  }
  return PalettizeWeight(values, shape, plan, allowed_nbits, out, reason, sensitivity, keep_decoded);
}

}  // namespace palettize
