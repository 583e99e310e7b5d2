#include "palettizer/fast_path.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <type_traits>

#include <tbb/parallel_for.h>

#include "palettizer/distinct.h"
#include "palettizer/run_lookup.h"
#include "palettizer/sensitivity_window.h"
#include "palettizer/table.h"
#include "palettizer/totals.h"
#include "util/avx2.h"
#include "util/half.h"
#include "util/pow2.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if PALETTIZE_AVX2
#include <immintrin.h>
#endif

namespace palettize {

namespace {

using MT = mil::DataType;

}  // namespace

namespace {

#if defined(__SSE2__)
// Values v and v + 1 as doubles.
__m128d LoadTwo(const double* p) { return _mm_loadu_pd(p); }
__m128d LoadTwo(const float* p) {
  return _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
#endif

template <class T>
void NearestSortedOf(const T* values, size_t n, const double* entries, uint64_t K,
                     std::vector<uint8_t>* idx) {
  idx->resize(n);
#if defined(__SSE2__)
  const __m128d magnitude = _mm_castsi128_pd(_mm_set1_epi64x(INT64_MAX));  // | | as a mask
#endif
  uint64_t j = 0;
  for (size_t v = 0; v < n;) {
#if defined(__SSE2__)
    // Four values at a time while none of them moves the sweep off entry j: each strictly nearer
    // to entry j than to j + 1 and to j - 1. The nearest entry changes at most a few times per
    // entry over millions of sorted values, so nearly every block passes.
    if (v + 4 <= n) {
      const __m128d x0 = LoadTwo(values + v), x1 = LoadTwo(values + v + 2);
      auto distance = [&](__m128d x, double e) {
        return _mm_and_pd(_mm_sub_pd(x, _mm_set1_pd(e)), magnitude);
      };
      const __m128d h0 = distance(x0, entries[j]), h1 = distance(x1, entries[j]);
      __m128d moves = _mm_setzero_pd();
      if (j + 1 < K)
        moves = _mm_or_pd(moves, _mm_or_pd(_mm_cmple_pd(distance(x0, entries[j + 1]), h0),
                                           _mm_cmple_pd(distance(x1, entries[j + 1]), h1)));
      if (j > 0)
        moves = _mm_or_pd(moves, _mm_or_pd(_mm_cmple_pd(distance(x0, entries[j - 1]), h0),
                                           _mm_cmple_pd(distance(x1, entries[j - 1]), h1)));
      if (_mm_movemask_pd(moves) == 0) {
        const uint32_t four = uint32_t(j) * 0x01010101u;
        std::memcpy(idx->data() + v, &four, 4);
        v += 4;
        continue;
      }
    }
#endif
    const double x = values[v];
    // Through equal entries too (rounding to the dtype can merge neighbours, e.g. uniform entries
    // on float16 subnormals): stopping at the first would leave every larger value there.
    while (j + 1 < K && std::fabs(x - entries[j + 1]) <= std::fabs(x - entries[j])) ++j;
    // A tie with an earlier, equal-distance entry below keeps the lower index.
    uint64_t best = j;
    while (best > 0 && std::fabs(x - entries[best - 1]) <= std::fabs(x - entries[best])) --best;
    (*idx)[v++] = uint8_t(best);
  }
}

}  // namespace

void NearestSorted(const double* values, size_t n, const double* entries, uint64_t K,
                   std::vector<uint8_t>* idx) {
  NearestSortedOf(values, n, entries, K, idx);
}

void NearestSorted(const float* values, size_t n, const double* entries, uint64_t K,
                   std::vector<uint8_t>* idx) {
  NearestSortedOf(values, n, entries, K, idx);
}

void NearestLikeGeneral(const std::vector<double>& values, const double* entries, uint64_t K,
                        std::vector<uint8_t>* idx) {
  thread_local std::vector<uint32_t> order;
  thread_local std::vector<double> sorted;
  order.resize(K), sorted.resize(K);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return entries[a] < entries[b]; });
  for (uint64_t j = 0; j < K; ++j) sorted[j] = entries[order[j]];
  idx->resize(values.size());
  size_t pos = 0;  // lower_bound of the value among `sorted`: values ascend, so it only moves up
  for (size_t v = 0; v < values.size(); ++v) {
    const double x = values[v];
    while (pos < K && sorted[pos] < x) ++pos;
    uint32_t best = 0;
    double best_err = std::numeric_limits<double>::infinity();
    for (size_t q = pos > 1 ? pos - 2 : 0; q < std::min<size_t>(K, pos + 2); ++q) {
      const uint32_t j = order[q];
      const double diff = x - entries[j];
      const double err = diff * diff;
      if (err < best_err || (err == best_err && j < best)) best_err = err, best = j;
    }
    (*idx)[v] = uint8_t(best);
  }
}

void ReleaseLarge(DistinctValues* d, std::vector<uint8_t>* nearest) {
  constexpr size_t kLarge = size_t(1) << 20;
  if (d->values.capacity() > kLarge || d->packed.bytes.data()) *d = DistinctValues();
  if (nearest->capacity() > kLarge) std::vector<uint8_t>().swap(*nearest);
}

bool GroupDistinct(const uint8_t* data, int dtype, const ChannelLayout& L, uint64_t G, uint64_t t,
                   const ElementWeights* sens, DistinctValues* d) {
  thread_local std::vector<uint32_t> hist;
  thread_local std::vector<uint64_t> seen;
  thread_local std::vector<double> whist, sbuf;
  thread_local std::vector<float> buf;
  thread_local std::vector<RepeatedElement> repeats;
  const uint64_t c0 = t * G, c1 = (t + 1) * G;
  if (dtype == MT::FLOAT64) {
    const double* w = reinterpret_cast<const double*>(data);
    return sens ? DistinctDoubleWeighted(w, L, c0, c1, *sens, sbuf, repeats, d)
                : DistinctDouble(w, L, c0, c1, d);
  }
  const bool half = dtype == MT::FLOAT16 || dtype == MT::BFLOAT16;
  if (half) hist.resize(65536, 0u), seen.resize(1024, 0u);
  if (half && sens) whist.resize(65536, 0.0);
  if (half)
    return DistinctHalf(dtype == MT::FLOAT16 ? kHalfFormat : kBFloat16Format,
                        reinterpret_cast<const uint16_t*>(data), L, c0, c1, hist, seen, sens, whist, sbuf, d);
  if (sens)
    return DistinctFloatWeighted(reinterpret_cast<const float*>(data), L, c0, c1, *sens, buf, sbuf, repeats,
                                 d);
  const size_t elements = (c1 - c0) * L.inner * L.outer;
  if (elements >= (size_t(1) << 20) && elements <= std::numeric_limits<uint32_t>::max())
    return DistinctFloatPacked(reinterpret_cast<const float*>(data), L, c0, c1, d);
  const bool finite = DistinctFloat(reinterpret_cast<const float*>(data), L, c0, c1, buf, d);
  if (buf.capacity() > (size_t(1) << 20)) std::vector<float>().swap(buf);
  return finite;
}

namespace {

#if PALETTIZE_AVX2
// Eight elements at a time: an element's run is the number of run starts (after the first) at or
// below it, counted by comparisons against every start (at most 15, the padding +Inf never
// counts), then mapped to the run's index. The same run as RunLookup's search.
__attribute__((target("avx2"))) void CountRunsAvx2(const float* w, size_t m, const float* starts, size_t s,
                                                   const uint8_t* index, uint8_t* out) {
  typedef float F8 __attribute__((vector_size(32)));
  typedef int32_t I8 __attribute__((vector_size(32)));
  F8 st[16];
  for (size_t r = 0; r < s; ++r) st[r] = F8{} + starts[r];
  uint8_t table[16] = {};
  std::memcpy(table, index, s + 1);
  const __m128i lut = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table));
  size_t e = 0;
  for (; e + 8 <= m; e += 8) {
    F8 x;
    std::memcpy(&x, w + e, sizeof x);
    I8 c = {};
    for (size_t r = 0; r < s; ++r) c -= st[r] <= x;  // -1 where the start is at or below x
    // The eight counts (0 to 15) as bytes, each replaced by its run's index.
    __m256i c32;
    std::memcpy(&c32, &c, sizeof c32);
    const __m128i c16 = _mm_packs_epi32(_mm256_castsi256_si128(c32), _mm256_extracti128_si256(c32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + e), _mm_shuffle_epi8(lut, _mm_packus_epi16(c16, c16)));
  }
  for (; e < m; ++e) {
    size_t c = 0;
    for (size_t r = 0; r < s; ++r) c += starts[r] <= w[e];
    out[e] = index[c];
  }
}
#endif

// GroupIndices for float32 elements and at most 16 runs through CountRunsAvx2; false where the
// processor lacks AVX2 (or the runs are more), for RunLookup's search.
bool CountRuns(const RunLookup<float>& runs, const ChannelLayout& L, uint64_t c0, uint64_t run,
               const float* w, uint8_t* indices) {
#if PALETTIZE_AVX2
  if (!HasAvx2() || runs.runs() > 16) return false;
  for (uint64_t o = 0; o < L.outer; ++o) {
    const uint64_t base = L.Offset(o, c0, 0);
    CountRunsAvx2(w + base, run, runs.starts() + 1, runs.runs() - 1, runs.indices(), indices + base);
  }
  return true;
#else
  (void)runs, (void)L, (void)c0, (void)run, (void)w, (void)indices;
  return false;
#endif
}

}  // namespace

void GroupIndices(const uint8_t* data, int dtype, const ChannelLayout& L, uint64_t G, uint64_t t,
                  const DistinctValues& d, const std::vector<uint8_t>& nearest, uint8_t* indices) {
  thread_local std::vector<uint8_t> map16;
  const uint64_t run = G * L.inner;
  if (dtype == MT::FLOAT16 || dtype == MT::BFLOAT16) {
    // Map every bit pattern present to its index, then one pass over the elements.
    map16.resize(65536);
    for (size_t v = 0; v < d.bits.size(); ++v) map16[d.bits[v]] = nearest[v];
    map16[0x8000] = map16[0];
    const uint16_t* w = reinterpret_cast<const uint16_t*>(data);
    // Through a local pointer: a byte store may alias the vector's own pointer, so indexing map16
    // in the loop reloaded it (thread-local) for every element, a third of the loop's time.
    const uint8_t* const map = map16.data();
    for (uint64_t o = 0; o < L.outer; ++o) {
      const uint64_t base = L.Offset(o, t * G, 0);
      for (uint64_t e = 0; e < run; ++e) indices[base + e] = map[w[base + e]];
    }
    return;
  }
  // Float32 and float64: the runs of equal indices over the sorted distinct values. Each element
  // finds its run among at most a few hundred run starts, in cache, rather than its value among up
  // to millions (a cache miss per step: 80% of a 32M-value tensor's time). Same index as
  // nearest[its value], for any `nearest` (runs need not be ordered).
  auto lookup = [&](const auto* w) {
    using F = std::remove_const_t<std::remove_pointer_t<decltype(w)>>;
    const RunLookup<F> runs = WithArrays(d, [&](const auto* values, const auto*, size_t n) {
      return RunLookup<F>(values, n, nearest.data());
    });
    if constexpr (std::is_same_v<F, float>) {
      if (CountRuns(runs, L, t * G, run, w, indices)) return;
    }
    for (uint64_t o = 0; o < L.outer; ++o) {
      const uint64_t base = L.Offset(o, t * G, 0);
      for (uint64_t e = 0; e < run; ++e) indices[base + e] = runs(w[base + e]);  // -0 is in the run of 0
    }
  };
  if (dtype == MT::FLOAT64)
    lookup(reinterpret_cast<const double*>(data));
  else
    lookup(reinterpret_cast<const float*>(data));
}

GroupTotals GroupTable(const DistinctValues& d, const PalettizeConfig& cfg, int dtype, uint64_t K,
                       double* lut, double* entries, double* lut_scale, double* lut_offset,
                       std::vector<uint8_t>* nearest) {
  const size_t used = ScalarTable(d, cfg, K, lut);
  FinishTable(lut, used, K, 1, cfg, dtype, entries, lut_scale, lut_offset);
  // Error totals from the distinct values and their counts: no second pass over the elements.
  if (dtype == MT::FLOAT64)
    NearestLikeGeneral(d.values, entries, K, nearest);
  else
    WithArrays(
        d, [&](const auto* values, const auto*, size_t n) { NearestSorted(values, n, entries, K, nearest); });
  GroupTotals g;
  WithArrays(d, [&](const auto* values, const auto* counts, size_t n) {
    const uint8_t* near = nearest->data();
    for (size_t v = 0; v < n; ++v) {
      const double x = values[v], count = counts ? double(counts[v]) : 1.0;
      const double diff = x - entries[near[v]];
      g.sse += count * diff * diff;
      g.max_err = std::max(g.max_err, std::fabs(diff));
      g.signal += count * x * x;
      if (!d.weights.empty()) g.wsse += d.weights[v] * diff * diff;
    }
  });
  return g;
}

bool TakesFastPath(const uint8_t* data, const TensorShape& shape, const PalettizeConfig& cfg) {
  if (cfg.cluster_dim != 1 || cfg.enable_per_channel_scale) return false;
  const int dtype = shape.mil_type;
  if (dtype == MT::FLOAT16 || dtype == MT::BFLOAT16 || dtype == MT::FLOAT32) return true;
  // Float64 data is read as doubles: a checkpoint's may start anywhere (then the general path).
  if (dtype != MT::FLOAT64 || cfg.mode == PalettizeMode::kUnique ||
      reinterpret_cast<uintptr_t>(data) % 8 != 0)
    return false;
  // Float64 values beyond the safe range need the general path's scaling by 2^-E; NaN is skipped
  // (the fast path refuses it as the general one does) and Inf gives E = 0.
  const double* w = reinterpret_cast<const double*>(data);
  double largest = 0;
  for (uint64_t e = 0; e < shape.elements; ++e)
    largest = std::fabs(w[e]) > largest ? std::fabs(w[e]) : largest;
  return FarExponent(largest) == 0;
}

bool FastScalar(const uint8_t* data, const TensorShape& shape, const WeightPlan& plan,
                const std::vector<int>& allowed_nbits, bool keep_decoded, PalettizedWeight* out,
                std::string* reason, const ElementWeights* sensitivity) {
  const PalettizeConfig& cfg = plan.config;
  const int dtype = shape.mil_type;
  const ChannelLayout L(shape, plan.channel_axis);
  const uint64_t G = plan.group_size;
  const uint64_t tables = L.channels / G;
  // Groups are independent: they run in parallel, each writing only its own slots, and the
  // totals are summed in group order afterwards, so any thread count gives the same bytes. A
  // group's distinct values live only while it is worked on (per thread), never all at once.
  // Sensitivities matter to k-means tables only.
  const ElementWeights* sens = cfg.mode == PalettizeMode::kKMeans ? sensitivity : nullptr;
  auto distinct = [&](uint64_t t, DistinctValues* d) { return GroupDistinct(data, dtype, L, G, t, sens, d); };
  std::vector<char> finite(tables, 1);
  int nbits = cfg.nbits;
  if (cfg.mode == PalettizeMode::kUnique) {
    // The table size depends on the largest group: a first pass counts.
    std::vector<size_t> sizes(tables, 0);
    tbb::parallel_for(uint64_t(0), tables, [&](uint64_t t) {
      thread_local DistinctValues d;
      finite[t] = distinct(t, &d);
      sizes[t] = d.size();
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
  if (cfg.lut_dtype != LutDType::kFloat) {
    p.lut_scale.assign(tables, 0.0);
    p.lut_offset.assign(tables, 0.0);
  }
  std::vector<double> sse(tables, 0.0), max_err(tables, 0.0), signal(tables, 0.0), wsse(tables, 0.0);
  tbb::parallel_for(uint64_t(0), tables, [&](uint64_t t) {
    thread_local std::vector<uint8_t> nearest;
    thread_local DistinctValues d;
    finite[t] = distinct(t, &d);
    if (!finite[t]) return;
    const bool quantized = cfg.lut_dtype != LutDType::kFloat;
    const GroupTotals g =
        GroupTable(d, cfg, dtype, K, &p.lut[t * K], &entries[t * K], quantized ? &p.lut_scale[t] : nullptr,
                   quantized ? &p.lut_offset[t] : nullptr, &nearest);
    sse[t] = g.sse, max_err[t] = g.max_err, signal[t] = g.signal, wsse[t] = g.wsse;
    GroupIndices(data, dtype, L, G, t, d, nearest, p.indices.data());
    ReleaseLarge(&d, &nearest);
  });
  if (std::find(finite.begin(), finite.end(), 0) != finite.end()) {
    *reason = "holds NaN or Inf values";
    return false;
  }
  // The decoded values (8 bytes an element) only once every group's distinct values are freed:
  // a float32 tensor per tensor held both at once (262 MB and 654 MB on 32.8M elements).
  if (keep_decoded) {
    p.decoded.assign(shape.elements, 0.0);
    tbb::parallel_for(uint64_t(0), tables, [&](uint64_t t) {
      const double* ent = &entries[t * K];
      const uint64_t run = G * L.inner;
      for (uint64_t o = 0; o < L.outer; ++o) {
        const uint64_t base = L.Offset(o, t * G, 0);
        for (uint64_t e = 0; e < run; ++e) p.decoded[base + e] = ent[p.indices[base + e]];
      }
    });
  }
  double total_sse = 0, total_signal = 0, total_max = 0, total_wsse = 0, largest = 0;
  if (dtype == MT::FLOAT64) {
    // The general path's sums, element by element in its order, so that the totals (which reach
    // the report and the bit allocation) are its bits: a float64 error need not be exact, and
    // sums of counts times squares round differently.
    const double* w = reinterpret_cast<const double*>(data);
    SensitivityWindow window(sens, shape.elements, std::min<uint64_t>(G * L.inner, uint64_t(1) << 14));
    for (uint64_t t = 0; t < tables; ++t) {
      const double* ent = &entries[t * K];
      for (uint64_t o = 0; o < L.outer; ++o) {
        const uint64_t base = L.Offset(o, t * G, 0);
        for (uint64_t e = 0; e < G * L.inner; ++e) {
          const double x = w[base + e], diff = x - ent[p.indices[base + e]];
          total_sse += diff * diff;
          if (sens) total_wsse += window.at(base + e) * diff * diff;
          total_max = std::max(total_max, std::fabs(diff));
          total_signal += x * x;
          largest = std::max(largest, std::fabs(x));
        }
      }
    }
  } else {
    for (uint64_t t = 0; t < tables; ++t) {
      total_sse += sse[t];
      total_max = std::max(total_max, max_err[t]);
      total_signal += signal[t];
      total_wsse += wsse[t];
    }
  }
  // float16, bfloat16 and float32 values never need scaling (E = 0), nor float64 ones here
  // (TakesFastPath); sensitivities may.
  if (!SetTotals(total_sse, total_signal, total_max, total_wsse, 0, sens ? sens->exponent : 0, largest, &p,
                 reason))
    return false;
  *out = std::move(p);
  return true;
}

}  // namespace palettize
