#include "palettizer/distinct.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>

#include "palettizer/value_index.h"
#include "util/huge_pages.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace palettize {

void MergePoints(std::vector<WeightedPoint>& pts, bool weighted, DistinctValues* d) {
  std::sort(pts.begin(), pts.end());
  d->Clear();
  for (const WeightedPoint& p : pts) {
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

bool DistinctHalf(const Float16Format& format, const uint16_t* w, const ChannelLayout& L, uint64_t c0,
                  uint64_t c1, std::vector<uint32_t>& hist, std::vector<uint64_t>& seen,
                  const ElementWeights* sens, std::vector<double>& whist, std::vector<double>& sbuf,
                  DistinctValues* d) {
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
#if defined(__SSE2__)
      // Four counts a compare (the scalar loop was a third of a 65,536-element group's time).
      const __m128i* h = reinterpret_cast<const __m128i*>(hist.data() + word * 64);
      for (int q = 0; q < 16; ++q) {
        const __m128i zero = _mm_cmpeq_epi32(_mm_loadu_si128(h + q), _mm_setzero_si128());
        bits |= uint64_t(~_mm_movemask_ps(_mm_castsi128_ps(zero)) & 0xF) << (4 * q);
      }
#else
      for (uint32_t bit = 0; bit < 64; ++bit) bits |= uint64_t(hist[word * 64 + bit] != 0) << bit;
#endif
      seen[word] = bits;
    }
  }
  // Every pattern present in a word of `seen`, by its bit, lowest first (clearing the lowest set
  // bit is the only step that waits on the one before).
  auto each = [&](uint32_t word, auto&& f) {
    for (uint64_t bits = seen[word]; bits; bits &= bits - 1) f(word * 64 + uint32_t(__builtin_ctzll(bits)));
    seen[word] = 0;
  };
  // Inf and NaN: exponent all ones, e.g. for float16 patterns 0x7C00-0x7FFF and 0xFC00-0xFFFF
  // (words 0x1F0-0x1FF and 0x3F0-0x3FF).
  bool finite = true;
  for (uint32_t word = format.inf_word; word < 0x400;
       word = word == 0x1FF ? 0x200 + format.inf_word : word + 1) {
    if (seen[word]) finite = false;
    each(word, [&](uint32_t b) {
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
  // Resized, not cleared first: every entry is written below, and a thread's reused arrays then
  // fill only what they grow by.
  d->packed = PackedFloats();
  d->values.resize(n);
  d->counts.resize(n);
  d->bits.resize(n);
  if (sens)
    d->weights.resize(n);
  else
    d->weights.clear();
  // The patterns in ascending value order: negatives from the largest magnitude (float16: 0xFBFF)
  // down to 0x8001, zero, then positives from 0x0001 up to the largest (float16: 0x7BFF).
  // A negative word's patterns, lowest first, go from the end of its share backwards.
  uint16_t* const bits = d->bits.data();
  size_t i = 0;
  for (uint32_t word = 0x200 + format.inf_word - 1; word >= 0x200; --word) {
    i += size_t(__builtin_popcountll(seen[word]));
    size_t at = i;
    each(word, [&](uint32_t b) { bits[--at] = uint16_t(b); });
  }
  const size_t zero_at = i;
  if (zero) bits[i++] = 0;
  for (uint32_t word = 0; word < format.inf_word; ++word)
    each(word, [&](uint32_t b) { bits[i++] = uint16_t(b); });
  // Then their values and counts, in a loop without branches.
  double* const values = d->values.data();
  double* const counts = d->counts.data();
  for (size_t v = 0; v < n; ++v) {
    const uint16_t b = bits[v];
    values[v] = format.Value(b);
    counts[v] = hist[b];
    hist[b] = 0;
  }
  if (zero) counts[zero_at] = zero_count;
  if (sens) {
    for (size_t v = 0; v < n; ++v) d->weights[v] = whist[bits[v]], whist[bits[v]] = 0;
    if (zero) d->weights[zero_at] = zero_weight;
  }
  return finite;
}

namespace {

// Fills d->weights for the distinct values of `w` (d's values and counts, already found; counts
// empty when all 1).
template <typename F>
void AddWeights(const F* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, const ElementWeights& sens,
                std::vector<double>& sbuf, std::vector<RepeatedElement>& repeats, DistinctValues* d) {
  ReserveHuge(d->weights, d->values.size());
  d->weights.assign(d->values.size(), 0.0);
  // Past a million distinct values, each element finds its value through ValueIndex (a few
  // independent cache misses, overlapped over a batch). A binary search among all the values
  // missed the cache at every step (32 s of CPU on 27M values, against 2 s for the rest of the
  // weight), a guess and gallop from fixed key bits still a chain of them (9 s on 32.8M doubles).
  const bool indexed = d->values.size() >= (size_t(1) << 20) && ValueIndex<F>::Fits(d->values.size());
  std::unique_ptr<ValueIndex<F>> index;
  if (indexed) index = std::make_unique<ValueIndex<F>>(d->values);
  const double* values = d->values.data();
  const bool unit = d->counts.empty();
  repeats.clear();
  // Sized exactly (the elements of values held more than once): growing by doubling would hold up
  // to twice the memory, 350 MB on a 27M-value tensor.
  double repeated = 0;
  for (double c : d->counts) repeated += c > 1 ? c : 0;
  repeats.reserve(size_t(repeated));
  const uint64_t run = (c1 - c0) * L.inner;
  constexpr uint64_t kChunk = 1 << 12;
  sbuf.resize(std::min(run, kChunk));
  thread_local std::vector<size_t> pos;
  pos.resize(std::min(run, kChunk));
  for (uint64_t o = 0; o < L.outer; ++o) {
    const uint64_t base = L.Offset(o, c0, 0);
    for (uint64_t b = 0; b < run; b += kChunk) {
      const uint64_t n = std::min(kChunk, run - b);
      sens.Read(base + b, n, sbuf.data());
      sens.Release(base + b, n);
      // -0 finds the merged 0.
      if (indexed)
        index->Find(w + base + b, n, pos.data());
      else
        for (uint64_t e = 0; e < n; ++e)
          pos[e] =
              size_t(std::lower_bound(values, values + d->values.size(), double(w[base + b + e])) - values);
      for (uint64_t e = 0; e < n; ++e) {
        const size_t v = pos[e];
        if (unit || d->counts[v] == 1)
          d->weights[v] = sbuf[e];
        else
          repeats.push_back({uint64_t(v), sbuf[e]});
      }
    }
  }
  std::sort(repeats.begin(), repeats.end());
  for (size_t r = 0; r < repeats.size(); ++r) {
    double& weight = d->weights[repeats[r].v];
    weight = r > 0 && repeats[r - 1].v == repeats[r].v ? weight + repeats[r].s : repeats[r].s;
  }
  // Per-thread buffers: a large one (a tensor per tensor) must not outlive the weight.
  if (repeats.capacity() > (size_t(1) << 20)) std::vector<RepeatedElement>().swap(repeats);
}

// A group whose values are all distinct has counts all 1: they are not stored (DistinctValues).
void DropUnitCounts(uint64_t elements, DistinctValues* d) {
  if (d->values.size() == elements) std::vector<double>().swap(d->counts);
}

}  // namespace

bool DistinctFloatWeighted(const float* w, const ChannelLayout& L, uint64_t c0, uint64_t c1,
                           const ElementWeights& sens, std::vector<float>& buf, std::vector<double>& sbuf,
                           std::vector<RepeatedElement>& repeats, DistinctValues* d) {
  if (!DistinctFloat(w, L, c0, c1, buf, d, true)) return false;
  if (buf.capacity() > (size_t(1) << 20)) std::vector<float>().swap(buf);
  DropUnitCounts((c1 - c0) * L.inner * L.outer, d);
  AddWeights(w, L, c0, c1, sens, sbuf, repeats, d);
  return true;
}

bool DistinctDoubleWeighted(const double* w, const ChannelLayout& L, uint64_t c0, uint64_t c1,
                            const ElementWeights& sens, std::vector<double>& sbuf,
                            std::vector<RepeatedElement>& repeats, DistinctValues* d) {
  if (!DistinctDouble(w, L, c0, c1, d, true)) return false;
  DropUnitCounts((c1 - c0) * L.inner * L.outer, d);
  AddWeights(w, L, c0, c1, sens, sbuf, repeats, d);
  return true;
}

}  // namespace palettize
