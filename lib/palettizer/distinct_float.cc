// Float32 distinct values (DistinctFloat): a comparison sort for small groups, a radix sort of
// order keys for large ones.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "palettizer/distinct.h"
#include "palettizer/radix_scatter.h"
#include "util/avx2.h"
#include "util/huge_pages.h"

#if PALETTIZE_AVX2
#include <immintrin.h>
#endif

namespace palettize {

namespace {

// Order keys: the sign bit flipped for positive values, all bits for negative ones, so that keys
// order like values (-0 just before +0).
uint32_t Key(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u ^ (u >> 31 ? 0xFFFFFFFFu : 0x80000000u);
}
float Value(uint32_t k) {
  const uint32_t u = k ^ (k >> 31 ? 0x80000000u : 0xFFFFFFFFu);
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// Keys live in the bytes of d->values (8 bytes a value: room for the sort's two arrays of 4-byte
// keys, the first half and the second), read and written with memcpy; the values are decoded
// into the same bytes. Memory touched for the first time costs more than anything else here (the
// kernel zeroes each page, 40% of a float32 package's CPU when the sort had arrays of its own).
constexpr int kBits = 11;
using Scatter = RadixScatter<uint32_t, kBits>;
constexpr uint32_t kBuckets = uint32_t(Scatter::kBuckets);
uint32_t Load(const unsigned char* base, size_t j) { return Scatter::Load(base, j); }
void Store(unsigned char* base, size_t j, uint32_t k) { Scatter::Store(base, j, k); }

// Sorts the order keys of a group's n elements, 11 bits a pass (three passes: a few reads of
// memory instead of log n, 5x faster than std::sort on 32M values), leaving them in the second
// half of `bytes` (8n bytes); false if an element is NaN or Inf. One read of the elements makes
// the keys, checks them and counts every pass's digits; a digit all keys share moves nothing
// and is skipped.
bool SortKeys(const float* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, size_t n,
              unsigned char* bytes) {
  constexpr int kPasses = 3;
  std::vector<size_t> count(kPasses * kBuckets, 0);
  Scatter scatter;
  const uint64_t run = (c1 - c0) * L.inner;
  unsigned char* from = bytes;
  unsigned char* to = bytes + 4 * n;
  bool finite = true;
  size_t i = 0;
  for (uint64_t o = 0; o < L.outer; ++o) {
    const float* p = w + L.Offset(o, c0, 0);
    for (uint64_t e = 0; e < run; ++e) {
      finite &= std::fabs(p[e]) <= FLT_MAX;  // false for NaN too
      const uint32_t k = Key(p[e]);
      Store(from, i++, k);
      ++count[k & (kBuckets - 1)];
      ++count[kBuckets + ((k >> kBits) & (kBuckets - 1))];
      ++count[2 * kBuckets + (k >> (2 * kBits))];
    }
  }
  if (!finite) return false;
  for (int pass = 0; pass < kPasses; ++pass) {
    size_t* c = &count[size_t(pass) * kBuckets];
    if (std::find(c, c + kBuckets, n) != c + kBuckets) continue;
    size_t sum = 0;
    for (uint32_t b = 0; b < kBuckets; ++b) sum += c[b], c[b] = sum - c[b];
    scatter.Pass(from, to, n, pass * kBits, c);
    std::swap(from, to);
  }
  if (from == bytes) std::memcpy(bytes + 4 * n, bytes, 4 * n);
  return true;
}

#if PALETTIZE_AVX2
// For each 8-bit mask, the lanes whose bit is set, in order (then lane 0): a permutation that
// packs them to the front.
struct PackTable {
  alignas(32) uint32_t lanes[256][8];
  PackTable() {
    for (uint32_t m = 0; m < 256; ++m) {
      uint32_t q = 0;
      for (uint32_t l = 0; l < 8; ++l)
        if (m >> l & 1) lanes[m][q++] = l;
      while (q < 8) lanes[m][q++] = 0;
    }
  }
};

// The merge of sorted keys [0, n) eight at a time: a key starts a new value where its value
// differs from the one before (-0 == +0: the first stays). Each start's value goes to values[v]
// and its element index to firsts[v], packed by a permutation from its lanes' mask; returns the
// number of values. A block's stores reach slots out to out + 7, past the last value, and
// out <= j (values start no faster than keys come): values[] stays in its half (j + 8 <= n),
// and firsts[] (the keys' own array) overwrites only keys already read.
__attribute__((target("avx2"))) size_t MergeAvx2(const unsigned char* keys, size_t n, unsigned char* values,
                                                 unsigned char* firsts) {
  static const PackTable table;
  const __m256i low31 = _mm256_set1_epi32(0x7FFFFFFF), lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i rotate = _mm256_setr_epi32(7, 0, 1, 2, 3, 4, 5, 6), last_lane = _mm256_set1_epi32(7);
  __m256 carry = _mm256_set1_ps(std::nanf(""));  // the first key starts a value
  size_t out = 0, j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i k = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(keys + 4 * j));
    // Value(k): the key xor 0x80000000 where its top bit is set (a positive value), else all ones.
    const __m256i sign = _mm256_srai_epi32(k, 31);
    const __m256 x = _mm256_castsi256_ps(
        _mm256_xor_si256(k, _mm256_xor_si256(_mm256_and_si256(sign, low31), _mm256_set1_epi32(-1))));
    const __m256 before = _mm256_blend_ps(_mm256_permutevar8x32_ps(x, rotate), carry, 0x01);
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(x, before, _CMP_NEQ_UQ));
    const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(table.lanes[mask]));
    _mm256_storeu_ps(reinterpret_cast<float*>(values + 4 * out), _mm256_permutevar8x32_ps(x, perm));
    const __m256i index = _mm256_add_epi32(_mm256_set1_epi32(int(uint32_t(j))), lane);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(firsts + 4 * out),
                        _mm256_permutevar8x32_epi32(index, perm));
    out += size_t(__builtin_popcount(unsigned(mask)));
    carry = _mm256_permutevar8x32_ps(x, last_lane);
  }
  float last = _mm256_cvtss_f32(carry);
  for (; j < n; ++j) {
    const float x = Value(Load(keys, j));
    if (j == 0 || x != last) {
      const uint32_t first = uint32_t(j);
      std::memcpy(values + 4 * out, &x, 4);
      std::memcpy(firsts + 4 * out, &first, 4);
      ++out;
    }
    last = x;
  }
  return out;
}
#endif

}  // namespace

bool DistinctFloat(const float* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, std::vector<float>& buf,
                   DistinctValues* d, bool huge_pages) {
  const uint64_t run = (c1 - c0) * L.inner;
  const size_t n = run * L.outer;
  d->Clear();
  if (n < (size_t(1) << 20)) {
    buf.clear();
    for (uint64_t o = 0; o < L.outer; ++o) {
      const float* p = w + L.Offset(o, c0, 0);
      buf.insert(buf.end(), p, p + run);
    }
    for (float x : buf)
      if (!std::isfinite(x)) return false;
    std::sort(buf.begin(), buf.end());
    for (float x : buf) {
      if (!d->values.empty() && d->values.back() == double(x))
        d->counts.back() += 1;  // -0 == +0 merge
      else
        d->values.push_back(x), d->counts.push_back(1);
    }
    return true;
  }
  ReserveHuge(d->values, n, huge_pages);
  d->values.resize(n);
  unsigned char* bytes = reinterpret_cast<unsigned char*>(d->values.data());
  if (!SortKeys(w, L, c0, c1, n, bytes)) {
    *d = DistinctValues();  // not kept in a per-thread buffer
    return false;
  }
  const unsigned char* keys = bytes + 4 * n;
  // One pass: a new value starts where the key's value differs from the last (-0 and +0 merge:
  // the first of them, -0 when present, stays). Value `out` (8 bytes at 8 out) is written after
  // key j (4 bytes at 4n + 4j) is read, and out <= j, so no key is overwritten before it is read.
  // The counts' capacity is n, but only the pages of the distinct values' counts are touched.
  ReserveHuge(d->counts, n, huge_pages);
  float last = Value(Load(keys, 0));
  d->counts.push_back(0);
  for (size_t j = 0; j < n; ++j) {
    const float x = Value(Load(keys, j));
    if (x != last) d->values[d->counts.size() - 1] = double(last), d->counts.push_back(0), last = x;
    d->counts.back() += 1;
  }
  d->values[d->counts.size() - 1] = double(last);
  const size_t distinct = d->counts.size();
  d->values.resize(distinct);
  return true;
}

bool DistinctFloatPacked(const float* w, const ChannelLayout& L, uint64_t c0, uint64_t c1,
                         DistinctValues* d) {
  const size_t n = (c1 - c0) * L.inner * L.outer;
  d->Clear();
  d->packed.bytes = PageBuffer(8 * n);
  d->packed.elements = n;
  unsigned char* bytes = d->packed.bytes.data();
  if (!SortKeys(w, L, c0, c1, n, bytes)) {
    d->packed = PackedFloats();
    return false;
  }
  // One pass, as DistinctFloat's: value `out` goes to bytes 4 out (the first half, free once the
  // sort is done) and its count to slot `out` of the sorted keys, written only once key j > out
  // has been read (a line of counts reaches memory once its last count is known, so it holds
  // only slots below j), so no key is overwritten before it is read.
  const unsigned char* keys = bytes + 4 * n;
#if PALETTIZE_AVX2
  if (HasAvx2() && n < (size_t(1) << 31)) {
    // Value starts, then each count from the next start (the count of value v is written after
    // start v + 1 is read: in place).
    const size_t distinct = MergeAvx2(keys, n, bytes, bytes + 4 * n);
    unsigned char* counts = bytes + 4 * n;
    for (size_t v = 0; v < distinct; ++v) {
      uint32_t first, next = uint32_t(n);
      std::memcpy(&first, counts + 4 * v, 4);
      if (v + 1 < distinct) std::memcpy(&next, counts + 4 * (v + 1), 4);
      const uint32_t count = next - first;
      std::memcpy(counts + 4 * v, &count, 4);
    }
    d->packed.size = distinct;
    return true;
  }
#endif
  LineStream values(bytes), counts(bytes + 4 * n);
  auto put = [&](float x, uint32_t c) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    values.Put(bits), counts.Put(c);
  };
  float last = Value(Load(keys, 0));
  uint32_t count = 0;
  size_t out = 0;
  for (size_t j = 0; j < n; ++j) {
    const float x = Value(Load(keys, j));
    if (x != last) {  // -0 == +0: the first of them stays
      put(last, count);
      ++out, last = x, count = 0;
    }
    ++count;
  }
  put(last, count);
  values.Finish(), counts.Finish();
  d->packed.size = out + 1;
  return true;
}

}  // namespace palettize
