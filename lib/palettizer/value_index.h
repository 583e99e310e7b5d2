// Where each of many elements sits among a group's sorted distinct values (AddWeights, for the
// summed sensitivities of float32 and float64 groups of millions of values), in a few cache
// misses an element that do not depend on each other, so that a batch overlaps them.
//
// Layout. A value's order key (its bits, the sign bit flipped for positive values and all bits for
// negative ones, so that keys order like values; -0 takes +0's key) is cut into its top 20 bits,
// naming a bucket, and the rest. Bucket b holding c values is cut again, by the rest's top s_b
// bits, into 2^s_b sub-buckets, s_b the least with c / 2^s_b <= 4 (at most all the rest's bits):
// so sub-buckets follow the values' density, where fixed key bits did not (float64 weights of one
// binade crowded a few hundred buckets with 30,000 values each, and a search from a guess took a
// chain of cache misses: 65% of a weighted float64 tensor's CPU). `top_[b]` packs the index of
// b's first sub-bucket (high bits) and s_b (low 8); `sub_[i]` is the position of sub-bucket i's
// first value (sub-buckets numbered in key order, one past the last holding n). An element's
// position then lies in [sub_[i], sub_[i + 1]): a line or two of values. Memory: 8 bytes a bucket
// (8 MiB) and at most 4 bytes for every two values.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "util/huge_pages.h"

namespace palettize {

template <typename F>
class ValueIndex {
 public:
  static constexpr int kKeyBits = int(8 * sizeof(F)), kTopBits = 20, kRestBits = kKeyBits - kTopBits;

  static uint64_t Key(F x) {
    if (x == 0) x = F(0);
    if constexpr (sizeof(F) == 4) {
      uint32_t u;
      std::memcpy(&u, &x, 4);
      return u ^ (u >> 31 ? 0xFFFFFFFFu : 0x80000000u);
    } else {
      uint64_t u;
      std::memcpy(&u, &x, 8);
      return u ^ (u >> 63 ? ~uint64_t(0) : uint64_t(1) << 63);
    }
  }

  // Whether a group of n distinct values can be indexed (positions fit 32 bits).
  static bool Fits(size_t n) { return n < (uint64_t(1) << 32); }

  // `values`: ascending, distinct (as doubles: -0 and +0 not both), each exactly an F; Fits(size).
  explicit ValueIndex(const std::vector<double>& values) : values_(values.data()), n_(values.size()) {
    ReserveHuge(top_, (size_t(1) << kTopBits) + 1);
    top_.assign((size_t(1) << kTopBits) + 1, 0);
    for (double v : values) ++top_[Key(F(v)) >> kRestBits];
    uint64_t total = 0;
    for (size_t b = 0; b + 1 < top_.size(); ++b) {
      int s = 0;
      while ((top_[b] >> s) > 4 && s < kRestBits) ++s;
      top_[b] = total << 8 | uint64_t(s);
      total += uint64_t(1) << s;
    }
    top_.back() = total << 8;
    ReserveHuge(sub_, total + 1);
    sub_.resize(total + 1);
    size_t next = 0;  // sub_[i] = the first position whose sub-bucket is i or later
    for (size_t p = 0; p < n_; ++p)
      for (const uint64_t i = Sub(Key(F(values_[p]))); next <= i;) sub_[next++] = uint32_t(p);
    while (next <= total) sub_[next++] = uint32_t(n_);
  }

  // The first position whose value is not below x (std::lower_bound's), for finite x.
  size_t Find(F x) const { return Scan(sub_[Sub(Key(x))], sub_[Sub(Key(x)) + 1], x); }

  // Find for xs[0..m), into pos: in stages over batches, each stage prefetching what the next
  // reads, so that the elements' cache misses overlap instead of following one another.
  void Find(const F* xs, size_t m, size_t* pos) const {
    constexpr size_t kBatch = 32;
    uint64_t key[kBatch], sub[kBatch];
    for (size_t b = 0; b < m; b += kBatch) {
      const size_t len = std::min(kBatch, m - b);
      for (size_t i = 0; i < len; ++i) {
        key[i] = Key(xs[b + i]);
        __builtin_prefetch(&top_[key[i] >> kRestBits]);
      }
      for (size_t i = 0; i < len; ++i) {
        sub[i] = Sub(key[i]);
        __builtin_prefetch(&sub_[sub[i]]);
      }
      for (size_t i = 0; i < len; ++i) {
        pos[b + i] = sub_[sub[i]];
        __builtin_prefetch(values_ + pos[b + i]);
      }
      for (size_t i = 0; i < len; ++i) pos[b + i] = Scan(pos[b + i], sub_[sub[i] + 1], xs[b + i]);
    }
  }

 private:
  uint64_t Sub(uint64_t k) const {
    const uint64_t t = top_[k >> kRestBits], s = t & 0xFF;
    const uint64_t rest = k & ((uint64_t(1) << kRestBits) - 1);
    return (t >> 8) + (s ? rest >> (kRestBits - int(s)) : 0);
  }
  size_t Scan(size_t lo, size_t hi, F x) const {
    if (hi - lo > 16) return size_t(std::lower_bound(values_ + lo, values_ + hi, double(x)) - values_);
    while (lo < hi && values_[lo] < double(x)) ++lo;
    return lo;
  }

  const double* values_;
  size_t n_;
  std::vector<uint64_t> top_;
  std::vector<uint32_t> sub_;
};

}  // namespace palettize
