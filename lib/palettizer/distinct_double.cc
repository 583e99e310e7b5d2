#include <algorithm>
#include <cmath>
#include <cstring>

#include "palettizer/distinct.h"

namespace palettize {

namespace {

constexpr uint64_t kSign = uint64_t(1) << 63;

// Order keys: the sign bit flipped for positive values, all bits for negative ones, so that keys
// order like values (-0 just before +0).
uint64_t Key(double x) {
  uint64_t u;
  std::memcpy(&u, &x, 8);
  return u ^ (u & kSign ? ~uint64_t(0) : kSign);
}
double Value(uint64_t k) {
  const uint64_t u = k ^ (k & kSign ? kSign : ~uint64_t(0));
  double x;
  std::memcpy(&x, &u, 8);
  return x;
}

// Sorts keys by 11-bit digits (six passes, the last of 9 bits), least significant first, with
// every digit's histogram counted in one read. A digit all keys share (the top bits of values of
// one sign and a few exponents) moves nothing and is skipped. `scratch` is the second array.
void RadixSortKeys(std::vector<uint64_t>& keys, std::vector<uint64_t>& scratch) {
  constexpr int kBits = 11, kPasses = 6;
  constexpr uint64_t kBuckets = uint64_t(1) << kBits;
  const size_t n = keys.size();
  std::vector<size_t> count(kPasses * kBuckets, 0);
  for (uint64_t k : keys)
    for (int p = 0; p < kPasses; ++p) ++count[p * kBuckets + ((k >> (p * kBits)) & (kBuckets - 1))];
  scratch.resize(n);
  for (int p = 0; p < kPasses; ++p) {
    size_t* c = &count[p * kBuckets];
    if (std::find(c, c + kBuckets, n) != c + kBuckets) continue;
    size_t sum = 0;
    for (uint64_t b = 0; b < kBuckets; ++b) sum += c[b], c[b] = sum - c[b];
    const int shift = p * kBits;
    for (uint64_t k : keys) scratch[c[(k >> shift) & (kBuckets - 1)]++] = k;
    keys.swap(scratch);
  }
}

}  // namespace

bool DistinctDouble(const double* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, DistinctValues* d) {
  const uint64_t run = (c1 - c0) * L.inner;
  for (uint64_t o = 0; o < L.outer; ++o) {
    const double* p = w + L.Offset(o, c0, 0);
    for (uint64_t e = 0; e < run; ++e)
      if (!std::isfinite(p[e])) return false;
  }
  d->Clear();
  const size_t n = run * L.outer;
  if (n < (size_t(1) << 16)) {
    // Small groups: a comparison sort in the values' own array.
    d->values.reserve(n);
    for (uint64_t o = 0; o < L.outer; ++o) {
      const double* p = w + L.Offset(o, c0, 0);
      d->values.insert(d->values.end(), p, p + run);
    }
    // Equal values in any order but -0 before +0, as the radix sort leaves them.
    std::sort(d->values.begin(), d->values.end(),
              [](double a, double b) { return a < b || (a == b && std::signbit(a) && !std::signbit(b)); });
  } else {
    // The keys' two arrays live only until the values are out: then 2 x 8 bytes an element.
    std::vector<uint64_t> keys(n), scratch;
    size_t i = 0;
    for (uint64_t o = 0; o < L.outer; ++o) {
      const double* p = w + L.Offset(o, c0, 0);
      for (uint64_t e = 0; e < run; ++e) keys[i++] = Key(p[e]);
    }
    RadixSortKeys(keys, scratch);
    std::vector<uint64_t>().swap(scratch);
    d->values.resize(n);
    for (size_t j = 0; j < n; ++j) d->values[j] = Value(keys[j]);
  }
  // Merged in place (-0 == +0: the first, -0 when present, stays); the counts sized exactly.
  size_t distinct = 0;
  for (size_t j = 0; j < n; ++j) distinct += j == 0 || d->values[j] != d->values[j - 1];
  d->counts.assign(distinct, 0.0);
  size_t out = 0;
  for (size_t j = 0; j < n; ++j) {
    if (j > 0 && d->values[j] == d->values[out - 1]) {
      d->counts[out - 1] += 1;
    } else {
      d->values[out] = d->values[j];
      d->counts[out++] = 1;
    }
  }
  d->values.resize(distinct);
  return true;
}

}  // namespace palettize
