#include "palettizer/weight_palettizer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "MIL.pb.h"
#include <tbb/parallel_for.h>

#include "cluster/kmeans1d.h"
#include "cluster/kmeans_vector.h"
#include "mil/dtype.h"
#include "mil/tensor_data.h"
#include "util/half.h"
#include "util/pow2.h"

namespace palettize {

namespace {

using MT = mil::DataType;

// The geometry of a weight seen as [outer, C, inner] around its channel axis.
struct Layout {
  uint64_t outer = 1, channels = 1, inner = 1;
  Layout(const TensorShape& shape, int axis) {
    for (int d = 0; d < int(shape.dims.size()); ++d) {
      if (d < axis) outer *= shape.dims[size_t(d)];
      else if (d == axis) channels = shape.dims[size_t(d)];
      else inner *= shape.dims[size_t(d)];
    }
  }
  uint64_t Offset(uint64_t o, uint64_t c, uint64_t i) const { return (o * channels + c) * inner + i; }
};

// Distinct values of one group, ascending, with their counts and, with sensitivities, the sums
// of their elements' sensitivities (empty without).
struct Distinct {
  std::vector<double> values;
  std::vector<double> counts;
  std::vector<double> weights;
  std::vector<uint16_t> bits;  // float16 groups: each value's bit pattern (0 stands for -0 too)
  void Clear() { values.clear(), counts.clear(), weights.clear(), bits.clear(); }
};

// A point of the general path: its clustered value, its count weight (s^2 with a per-channel
// scale s, else 1) and its sensitivity.
struct Point {
  double x, count, sensitivity;
  bool operator<(const Point& o) const {
    return x != o.x ? x < o.x : count != o.count ? count < o.count : sensitivity < o.sensitivity;
  }
};

// Sorts points and merges equal values, summing counts and count x sensitivity.
void MergePoints(std::vector<Point>& pts, bool weighted, Distinct* d) {
  std::sort(pts.begin(), pts.end());
  d->Clear();
  for (const Point& p : pts) {
    if (!d->values.empty() && d->values.back() == p.x) {
      d->counts.back() += p.count;
      if (weighted) d->weights.back() += p.count * p.sensitivity;
    } else {
      d->values.push_back(p.x);
      d->counts.push_back(p.count);
      if (weighted) d->weights.push_back(p.count * p.sensitivity);
    }
  }
}

// The smallest positive value of MIL dtype `mil_type` (float16, bfloat16, float32; else double's).
double SmallestPositive(int mil_type) {
  switch (mil_type) {
    case MT::FLOAT16: return 0x1p-24;
    case MT::BFLOAT16: return 0x1p-133;
    case MT::FLOAT32: return 0x1p-149;
    default: return std::numeric_limits<double>::denorm_min();
  }
}

// Quantizes one table's entries to 8-bit integers: int8 symmetric (scale = max|v| / 127), uint8
// affine (scale = (max - min) / 255, offset = round(-min / scale)). Scale and offset are rounded
// to the weight's dtype first, so the dequantized entries are what Core ML computes. A scale that
// rounds to 0 (subnormal tables) becomes the dtype's smallest positive value, of which every
// entry is then an integer multiple.
void QuantizeTable(double* entries, size_t n, LutDType type, int mil_type, double* scale,
                   double* offset) {
  double lo = *std::min_element(entries, entries + n), hi = *std::max_element(entries, entries + n);
  if (type == LutDType::kInt8) {
    double m = std::max(std::fabs(lo), std::fabs(hi));
    *scale = RoundToDType(m > 0 ? m / 127.0 : 1.0, mil_type);
    if (*scale == 0) *scale = SmallestPositive(mil_type);
    *offset = 0;
    for (size_t j = 0; j < n; ++j) entries[j] = std::clamp(std::nearbyint(entries[j] / *scale), -128.0, 127.0);
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

// The smallest allowed width whose tables hold `most` entries, or 0.
int UniqueNBits(size_t most, const std::vector<int>& allowed) {
  for (int b : allowed)
    if (most <= (size_t(1) << b)) return b;
  return 0;
}

// A 16-bit float format: float16 (5 exponent bits) or bfloat16 (8). Both are sign and magnitude, so
// patterns order like their values within each sign; Inf and NaN are the patterns from the first
// with all exponent bits set, 0x7C00 or 0x7F80 (word inf_word of `seen`), and their negatives.
struct Float16Format {
  uint32_t inf_word;
  float (*to_float)(uint16_t);
};
constexpr Float16Format kHalfFormat{0x7C00 / 64, HalfToFloat};
constexpr Float16Format kBFloat16Format{0x7F80 / 64, BFloat16ToFloat};

// 16-bit float group: a histogram of bit patterns, read back in value order (negative patterns
// from the largest magnitude down, then positive ones up; -0 and +0 merge into one value 0).
// With sensitivities, `whist` (65,536 sums, all zero on arrival and on return) sums each bit
// pattern's sensitivities, read a chunk at a time into `sbuf` and released from memory as read, so
// a large group costs no more memory than a small one.
bool DistinctHalf(const Float16Format& format, const uint16_t* w, const Layout& L, uint64_t c0, uint64_t c1,
                  std::vector<uint32_t>& hist,
                  std::vector<uint64_t>& seen, const ElementWeights* sens, std::vector<double>& whist,
                  std::vector<double>& sbuf, Distinct* d) {
  // `hist` (a count per bit pattern) and `seen` (a bit per pattern present) arrive all zero and
  // are left all zero: each is cleared as it is read. `seen` lets the patterns present be listed
  // in value order without reading all 65,536 counts.
  const uint64_t run = (c1 - c0) * L.inner;
  constexpr uint64_t kChunk = 1 << 12;
  if (sens) sbuf.resize(std::min(run, kChunk));
  // In a group of fewer elements than patterns, each element marks its pattern in `seen` as it
  // is counted; in a larger one that would cost more than reading the counts once afterwards.
  const bool small = run * L.outer < 65536;
  for (uint64_t o = 0; o < L.outer; ++o) {
    const uint64_t base = L.Offset(o, c0, 0);
    const uint16_t* p = w + base;
    if (small) {
      for (uint64_t e = 0; e < run; ++e) {
        ++hist[p[e]];
        seen[p[e] >> 6] |= uint64_t(1) << (p[e] & 63);
      }
    } else {
      for (uint64_t e = 0; e < run; ++e) ++hist[p[e]];
    }
    if (!sens) continue;
    for (uint64_t b = 0; b < run; b += kChunk) {
      const uint64_t n = std::min(kChunk, run - b);
      sens->Read(base + b, n, sbuf.data());
      sens->Release(base + b, n);
      for (uint64_t e = 0; e < n; ++e) whist[p[b + e]] += sbuf[e];
    }
  }
  if (!small) {
    for (uint32_t word = 0; word < 1024; ++word) {
      uint64_t bits = 0;
      for (uint32_t bit = 0; bit < 64; ++bit) bits |= uint64_t(hist[word * 64 + bit] != 0) << bit;
      seen[word] = bits;
    }
  }
  // Every pattern present, by its word of `seen` and its bit, in ascending or descending order.
  auto each = [&](uint32_t word, bool descending, auto&& f) {
    for (uint64_t bits = seen[word]; bits;) {
      const int bit = descending ? 63 - __builtin_clzll(bits) : __builtin_ctzll(bits);
      bits &= ~(uint64_t(1) << bit);
      f(word * 64 + uint32_t(bit));
    }
    seen[word] = 0;
  };
  // Inf and NaN: exponent all ones, e.g. for float16 patterns 0x7C00-0x7FFF and 0xFC00-0xFFFF
  // (words 0x1F0-0x1FF and 0x3F0-0x3FF).
  bool finite = true;
  for (uint32_t word = format.inf_word; word < 0x400; word = word == 0x1FF ? 0x200 + format.inf_word : word + 1) {
    if (seen[word]) finite = false;
    each(word, false, [&](uint32_t b) {
      hist[b] = 0;
      if (sens) whist[b] = 0;
    });
  }
  // -0 and +0 are one value.
  const bool zero = hist[0] || hist[0x8000];
  const double zero_count = double(hist[0]) + hist[0x8000];
  const double zero_weight = sens ? whist[0] + whist[0x8000] : 0;
  seen[0] &= ~uint64_t(1);
  seen[0x200] &= ~uint64_t(1);
  hist[0] = hist[0x8000] = 0;
  if (sens) whist[0] = whist[0x8000] = 0;
  size_t n = zero;
  for (uint32_t word = 0; word < 0x400; ++word) n += size_t(__builtin_popcountll(seen[word]));
  d->Clear();
  d->values.resize(n);
  d->counts.resize(n);
  d->bits.resize(n);
  if (sens) d->weights.resize(n);
  size_t i = 0;
  auto take = [&](uint32_t b) {
    d->values[i] = format.to_float(uint16_t(b));
    d->counts[i] = hist[b];
    d->bits[i] = uint16_t(b);
    hist[b] = 0;
    if (sens) d->weights[i] = whist[b], whist[b] = 0;
    ++i;
  };
  // Ascending values: negatives from the largest magnitude (float16: 0xFBFF) down to 0x8001, zero,
  // then positives from 0x0001 up to the largest (float16: 0x7BFF).
  for (uint32_t word = 0x200 + format.inf_word - 1; word >= 0x200; --word) each(word, true, take);
  if (zero) {
    d->values[i] = 0.0, d->counts[i] = zero_count, d->bits[i] = 0;
    if (sens) d->weights[i] = zero_weight;
    ++i;
  }
  for (uint32_t word = 0; word < format.inf_word; ++word) each(word, false, take);
  return finite;
}

bool DistinctFloat(const float* w, const Layout& L, uint64_t c0, uint64_t c1, std::vector<float>& buf,
                   Distinct* d) {
  buf.clear();
  const uint64_t run = (c1 - c0) * L.inner;
  for (uint64_t o = 0; o < L.outer; ++o) {
    const float* p = w + L.Offset(o, c0, 0);
    buf.insert(buf.end(), p, p + run);
  }
  for (float x : buf)
    if (!std::isfinite(x)) return false;
  std::sort(buf.begin(), buf.end());
  d->Clear();
  for (float x : buf) {
    if (!d->values.empty() && d->values.back() == double(x)) d->counts.back() += 1;  // -0 == +0 merge
    else d->values.push_back(x), d->counts.push_back(1);
  }
  return true;
}

// The same with sensitivities. Each distinct value's weight is the sum of its elements'
// sensitivities in ascending order (the order of the general path's MergePoints, whose counts are
// all 1 here), so both paths give the same bits. The values are sorted alone, as without
// sensitivities; then one pass reads the sensitivities a chunk at a time: a value held by one
// element takes its sensitivity, and only elements of repeated values are kept, as (value index,
// sensitivity) pairs sorted and summed. Memory is that of the plain path plus a weight per
// distinct value and 16 bytes per repeated element (few in float32 weights).
struct Repeat {
  uint64_t v;
  double s;
  bool operator<(const Repeat& o) const { return v != o.v ? v < o.v : s < o.s; }
};

bool DistinctFloatWeighted(const float* w, const Layout& L, uint64_t c0, uint64_t c1, const ElementWeights& sens,
                           std::vector<float>& buf, std::vector<double>& sbuf, std::vector<Repeat>& repeats,
                           Distinct* d) {
  if (!DistinctFloat(w, L, c0, c1, buf, d)) return false;
  d->weights.assign(d->values.size(), 0.0);
  repeats.clear();
  const uint64_t run = (c1 - c0) * L.inner;
  constexpr uint64_t kChunk = 1 << 12;
  sbuf.resize(std::min(run, kChunk));
  for (uint64_t o = 0; o < L.outer; ++o) {
    const uint64_t base = L.Offset(o, c0, 0);
    for (uint64_t b = 0; b < run; b += kChunk) {
      const uint64_t n = std::min(kChunk, run - b);
      sens.Read(base + b, n, sbuf.data());
      sens.Release(base + b, n);
      for (uint64_t e = 0; e < n; ++e) {
        const double x = w[base + b + e];  // -0 finds the merged 0
        const size_t v = size_t(std::lower_bound(d->values.begin(), d->values.end(), x) - d->values.begin());
        if (d->counts[v] == 1) d->weights[v] = sbuf[e];
        else repeats.push_back({uint64_t(v), sbuf[e]});
      }
    }
  }
  std::sort(repeats.begin(), repeats.end());
  for (size_t r = 0; r < repeats.size(); ++r) {
    double& weight = d->weights[repeats[r].v];
    weight = r > 0 && repeats[r - 1].v == repeats[r].v ? weight + repeats[r].s : repeats[r].s;
  }
  return true;
}

// Evenly spaced entries from lo to hi. When hi - lo overflows (float64 weights near the largest
// double), the halves are spaced and doubled back, exactly.
void UniformTable(double lo, double hi, uint64_t K, double* table) {
  if (std::isfinite(double(K - 1) * (hi - lo))) {
    for (uint64_t j = 0; j < K; ++j) table[j] = lo + double(j) * (hi - lo) / double(K - 1);
    return;
  }
  const double half_span = hi / 2 - lo / 2;
  for (uint64_t j = 0; j < K; ++j) table[j] = 2 * (lo / 2 + double(j) / double(K - 1) * half_span);
}

// The optimal k-means centroids of ascending `xs` with positive weights `ws`. Values or weights
// outside FarExponent's safe range are first scaled by powers of two (the optimum scales with
// them) and the centroids scaled back; values that become equal in the scaled frame (they differ
// by less than 2^-1074 of the largest) merge, as equal values do.
Clustering1D SafeKMeans1D(const double* xs, const double* ws, size_t n, uint64_t K) {
  const int ex = FarExponent(std::max(std::fabs(xs[0]), std::fabs(xs[n - 1])));
  const int ew = FarExponent(*std::max_element(ws, ws + n));
  if (ex == 0 && ew == 0) return OptimalKMeans1D(xs, ws, n, K);
  thread_local std::vector<double> sx, sw;
  sx.clear(), sw.clear();
  for (size_t v = 0; v < n; ++v) {
    const double x = std::ldexp(xs[v], -ex), w = std::ldexp(ws[v], -ew);
    if (!(w > 0)) continue;
    if (!sx.empty() && sx.back() == x) sw.back() += w;
    else sx.push_back(x), sw.push_back(w);
  }
  Clustering1D c = OptimalKMeans1D(sx.data(), sw.data(), sx.size(), K);
  for (double& centroid : c.centroids) centroid = std::ldexp(centroid, ex);
  return c;
}

// Fills a scalar table from a group's distinct values (ascending, with weights): the optimal
// k-means centroids, evenly spaced entries, or the values themselves. Returns the entries used.
size_t ScalarTable(const Distinct& d, const PalettizeConfig& cfg, uint64_t K, double* table) {
  if (cfg.mode == PalettizeMode::kUnique) {
    std::copy(d.values.begin(), d.values.end(), table);
    return d.values.size();
  }
  if (cfg.mode == PalettizeMode::kUniform) {
    UniformTable(d.values.front(), d.values.back(), K, table);
    return K;
  }
  // Weighted: values of total sensitivity 0 leave the problem (the DP needs positive weights);
  // when none is left, the plain table (whose counts are positive, short of per-channel scales
  // 2^537 apart, whose squared ratio underflows: those leave too). Copied only when some leave.
  const bool weighted = std::any_of(d.weights.begin(), d.weights.end(), [](double w) { return w > 0; });
  const std::vector<double>& w = weighted ? d.weights : d.counts;
  const bool all_positive = std::all_of(w.begin(), w.end(), [](double x) { return x > 0; });
  thread_local std::vector<double> xs, ws;
  xs.clear(), ws.clear();
  if (!all_positive)
    for (size_t v = 0; v < w.size(); ++v)
      if (w[v] > 0) xs.push_back(d.values[v]), ws.push_back(w[v]);
  Clustering1D c = all_positive ? SafeKMeans1D(d.values.data(), w.data(), d.values.size(), K)
                                : SafeKMeans1D(xs.data(), ws.data(), xs.size(), K);
  std::copy(c.centroids.begin(), c.centroids.end(), table);
  return c.centroids.size();
}

// Completes a table of K entries of D values whose first `used` are set: the rest repeat the last
// (harmless, and keeps scalar tables sorted), all are rounded to the dtype and, for 8-bit tables,
// quantized. `entries` receives what Core ML decompresses each entry to.
void FinishTable(double* table, size_t used, uint64_t K, uint64_t D, const PalettizeConfig& cfg, int dtype,
                 double* entries, double* lut_scale, double* lut_offset) {
  for (size_t j = used; j < K; ++j)
    for (uint64_t d = 0; d < D; ++d) table[j * D + d] = table[(used - 1) * D + d];
  for (uint64_t e = 0; e < K * D; ++e) table[e] = RoundToDType(table[e], dtype);
  std::copy(table, table + K * D, entries);
  if (cfg.lut_dtype != LutDType::kFloat) {
    QuantizeTable(table, K * D, cfg.lut_dtype, dtype, lut_scale, lut_offset);
    for (uint64_t e = 0; e < K * D; ++e) entries[e] = RoundToDType(*lut_scale * (table[e] - *lut_offset), dtype);
  }
}

// Sets a weight's error totals from sums over its values scaled by 2^-e (e = FarExponent of the
// largest magnitude, 0 for every float16/float32 weight) and sensitivities scaled by
// 2^-sens_exponent (ElementWeights::exponent), back in the weight's own units; the SNR comes from
// the scaled sums, whose ratio is the true one. False, with `reason`, when sse, max_abs_error or
// weighted_sse does not fit a double: a report could not state them.
bool SetTotals(double sse, double signal, double max_err, double wsse, int e, int sens_exponent, double largest,
               PalettizedWeight* p, std::string* reason) {
  p->sse = std::ldexp(sse, 2 * e);
  p->signal = std::ldexp(signal, 2 * e);
  p->max_abs_error = std::ldexp(max_err, e);
  p->weighted_sse = std::ldexp(wsse, 2 * e + sens_exponent);
  p->snr_db = sse == 0 ? INFINITY : 10.0 * std::log10(signal / sse);
  if (std::isfinite(p->sse) && std::isfinite(p->max_abs_error) && std::isfinite(p->weighted_sse)) return true;
  if (!std::isfinite(p->sse) || !std::isfinite(p->max_abs_error)) {
    char buf[120];
    std::snprintf(buf, sizeof buf, "its errors reach past the largest double (largest |value| %.3g); not palettized",
                  largest);
    *reason = buf;
  } else {
    *reason = "its sensitivity-weighted squared errors sum past the largest double; not palettized";
  }
  return false;
}

}  // namespace

// A weight's sensitivities read on demand, a window of them at a time, so that the general path
// holds no more than a window beside its own buffers: at(off) is element off's, for offsets that
// mostly rise. A window starts at the first element not in the last one and spans `size`
// elements (or to the end).
class SensitivityWindow {
 public:
  SensitivityWindow(const ElementWeights* w, uint64_t elements, uint64_t size)
      : w_(w), elements_(elements), size_(std::max<uint64_t>(size, 1)) {}
  double at(uint64_t off) {
    if (off < begin_ || off >= end_) {
      begin_ = off;
      end_ = std::min(elements_, off + size_);
      buf_.resize(end_ - begin_);
      w_->Read(begin_, end_ - begin_, buf_.data());
      w_->Release(begin_, end_ - begin_);
    }
    return buf_[off - begin_];
  }

 private:
  const ElementWeights* w_;
  uint64_t elements_, size_;
  uint64_t begin_ = 0, end_ = 0;
  std::vector<double> buf_;
};

bool PalettizeWeight(const std::vector<double>& values, const TensorShape& shape,
                     const WeightPlan& plan, const std::vector<int>& allowed_nbits,
                     PalettizedWeight* out, std::string* reason, const ElementWeights* sensitivity) {
  const PalettizeConfig& cfg = plan.config;
  const int dtype = shape.mil_type;
  const int axis = plan.channel_axis;
  const uint64_t D = uint64_t(cfg.cluster_dim);
  const Layout L(shape, axis);
  const uint64_t G = plan.group_size;
  const uint64_t tables = L.channels / G;
  double largest = 0;
  for (double v : values) {
    if (!std::isfinite(v)) {
      *reason = "holds NaN or Inf values";
      return false;
    }
    largest = std::max(largest, std::fabs(v));
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
      *reason = std::to_string(most) + " unique values" + (tables > 1 ? " in a group" : "") +
                ", more than " + std::to_string(1 << allowed_nbits.back()) + " fit a table";
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
      std::vector<Point> pts;
      pts.reserve(L.outer * G * L.inner);
      for (uint64_t o = 0; o < L.outer; ++o)
        for (uint64_t c = t * G; c < (t + 1) * G; ++c)
          for (uint64_t i = 0; i < L.inner; ++i) {
            const double s = std::ldexp(s_at(o, i), -Es);
            const uint64_t off = L.Offset(o, c, i);
            pts.push_back({norm(values[off], o, i), s * s, weighted ? sens.at(off) : 0.0});
          }
      Distinct d;
      MergePoints(pts, weighted, &d);
      used = ScalarTable(d, cfg, K, table);
    } else {
      // With sensitivities, a vector weighs the sum of its elements' (coremltools' SKM rule).
      std::vector<double> pts, vector_weights;
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
      // Scaled by a power of two when beyond the safe range, as SafeKMeans1D does.
      double most = 0;
      for (double x : pts) most = std::max(most, std::fabs(x));
      const int ev = FarExponent(most);
      if (ev != 0)
        for (double& x : pts) x = std::ldexp(x, -ev);
      VectorClustering vc = !weighted
                                ? VectorKMeans(pts.data(), pts.size() / D, D, K, opt)
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
  p.decoded.assign(shape.elements, 0.0);
  double sse = 0, signal = 0, max_err = 0, wsse = 0;  // of the values times 2^-E
  for (uint64_t t = 0; t < tables; ++t) {
    const double* ent = &entries[t * K * D];
    // Scalar tables: entries sorted, for a binary search; vector tables: exhaustive.
    std::vector<uint32_t> order(K);
    std::iota(order.begin(), order.end(), 0u);
    if (D == 1) std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return ent[a] < ent[b]; });
    std::vector<double> sorted(K);
    for (uint64_t j = 0; j < K; ++j) sorted[j] = ent[order[j] * D];
    for (uint64_t o = 0; o < L.outer; ++o)
      for (uint64_t c = t * G; c < (t + 1) * G; c += D)
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
          } else {
            for (uint32_t j = 0; j < K; ++j) consider(j);
          }
          // Index position: the element's position with the channel divided by D.
          uint64_t idx = (o * (L.channels / D) + c / D) * L.inner + i;
          p.indices[idx] = uint8_t(best);
          for (uint64_t d = 0; d < D; ++d) {
            uint64_t off = L.Offset(o, c + d, i);
            double f = final_value(ent[best * D + d], o, i);
            p.decoded[off] = f;
            const double x = down(values[off]);
            double diff = x - down(f);
            sse += diff * diff;
            if (weighted) wsse += sens.at(off) * diff * diff;
            max_err = std::max(max_err, std::fabs(diff));
            signal += x * x;
          }
        }
  }
  if (!SetTotals(sse, signal, max_err, wsse, E, weighted ? sensitivity->exponent : 0, largest, &p, reason))
    return false;
  *out = std::move(p);
  return true;
}

namespace {

// For ascending `values`, the index of the nearest of the ascending `entries` (lowest index on
// ties), by one forward sweep.
void NearestSorted(const std::vector<double>& values, const double* entries, uint64_t K, std::vector<uint8_t>* idx) {
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
      return DistinctHalf(format, reinterpret_cast<const uint16_t*>(data), L, c0, c1, hist, seen, sens, whist, sbuf,
                          d);
    if (sens)
      return DistinctFloatWeighted(reinterpret_cast<const float*>(data), L, c0, c1, *sens, buf, sbuf, repeats, d);
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

}  // namespace

bool PalettizeWeightRaw(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                        const std::vector<int>& allowed_nbits, bool keep_decoded, PalettizedWeight* out,
                        std::string* reason, const ElementWeights* sensitivity) {
  const PalettizeConfig& cfg = plan.config;
  if (cfg.cluster_dim == 1 && !cfg.enable_per_channel_scale &&
      (shape.mil_type == MT::FLOAT16 || shape.mil_type == MT::BFLOAT16 || shape.mil_type == MT::FLOAT32))
    return FastScalar(data, shape, plan, allowed_nbits, keep_decoded, out, reason, sensitivity);
  std::vector<double> values(shape.elements);
  for (uint64_t e = 0; e < shape.elements; ++e) values[e] = ElementAsDouble(data, shape.mil_type, e);
  if (!PalettizeWeight(values, shape, plan, allowed_nbits, out, reason, sensitivity)) return false;
  if (!keep_decoded) std::vector<double>().swap(out->decoded);
  return true;
}

}  // namespace palettize
