#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "palettizer/distinct.h"
#include "palettizer/radix_scatter.h"
#include "util/huge_pages.h"

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

constexpr int kBits = 11;
using Scatter = RadixScatter<uint64_t, kBits>;
uint64_t Load(const unsigned char* base, size_t j) { return Scatter::Load(base, j); }
void Store(unsigned char* base, size_t j, uint64_t k) { Scatter::Store(base, j, k); }

// Sorts the n keys in `keys` by 11-bit digits (six passes, the last of 9 bits, each through
// RadixScatter's cache lines), least significant first, with every digit's histogram counted in one read. A
// digit all keys share (the top bits of values of one sign and a few exponents) moves nothing and is skipped.
// The second array is allocated only for the first pass that moves keys, uninitialized (read and written in
// order: not on huge pages). Returns where the sorted keys are: `keys` or `scratch`.
const unsigned char* RadixSortKeys(unsigned char* keys, size_t n, std::unique_ptr<uint64_t[]>& scratch) {
  constexpr int kPasses = 6;
  constexpr uint64_t kBuckets = Scatter::kBuckets;
  std::vector<size_t> count(kPasses * kBuckets, 0);
  Scatter scatter;
  for (size_t j = 0; j < n; ++j) {
    const uint64_t k = Load(keys, j);
    for (int p = 0; p < kPasses; ++p) ++count[p * kBuckets + ((k >> (p * kBits)) & (kBuckets - 1))];
  }
  unsigned char* from = keys;
  unsigned char* to = nullptr;
  for (int p = 0; p < kPasses; ++p) {
    size_t* c = &count[p * kBuckets];
    if (std::find(c, c + kBuckets, n) != c + kBuckets) continue;
    if (!scratch)
      scratch = NewHugeArray<uint64_t>(n, false), to = reinterpret_cast<unsigned char*>(scratch.get());
    size_t sum = 0;
    for (uint64_t b = 0; b < kBuckets; ++b) sum += c[b], c[b] = sum - c[b];
    scatter.Pass(from, to, n, p * kBits, c);
    std::swap(from, to);
  }
  return from;
}

}  // namespace

bool DistinctDouble(const double* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, DistinctValues* d,
                    bool huge_pages) {
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
    // The keys are sorted in the bytes of d->values and the second array, and decoded into
    // d->values (in place, or from the second array): memory touched for the first time costs
    // more than the sort (the kernel zeroes each page).
    ReserveHuge(d->values, n, huge_pages);
    d->values.resize(n);
    unsigned char* bytes = reinterpret_cast<unsigned char*>(d->values.data());
    size_t i = 0;
    for (uint64_t o = 0; o < L.outer; ++o) {
      const double* p = w + L.Offset(o, c0, 0);
      for (uint64_t e = 0; e < run; ++e) Store(bytes, i++, Key(p[e]));
    }
    std::unique_ptr<uint64_t[]> scratch;
    const unsigned char* sorted = RadixSortKeys(bytes, n, scratch);
    for (size_t j = 0; j < n; ++j) d->values[j] = Value(Load(sorted, j));
  }
  // Merged in place (-0 == +0: the first, -0 when present, stays); the counts sized exactly.
  size_t distinct = 0;
  for (size_t j = 0; j < n; ++j) distinct += j == 0 || d->values[j] != d->values[j - 1];
  ReserveHuge(d->counts, distinct, huge_pages);
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
