// The distinct values of a weight's channel groups, with their counts and summed sensitivities:
// a histogram of bit patterns for 16-bit floats, sorting for float32 and float64, merging for the
// general path.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "palettizer/weight_palettizer.h"
#include "util/half.h"
#include "util/page_buffer.h"

namespace palettize {

// The geometry of a weight seen as [outer, C, inner] around its channel axis.
struct ChannelLayout {
  uint64_t outer = 1, channels = 1, inner = 1;
  ChannelLayout(const TensorShape& shape, int axis) {
    for (int d = 0; d < int(shape.dims.size()); ++d) {
      if (d < axis)
        outer *= shape.dims[size_t(d)];
      else if (d == axis)
        channels = shape.dims[size_t(d)];
      else
        inner *= shape.dims[size_t(d)];
    }
  }
  uint64_t Offset(uint64_t o, uint64_t c, uint64_t i) const { return (o * channels + c) * inner + i; }
};

// A float32 group's distinct values as floats and their counts as uint32_t, in the radix sort's
// own buffer of 8 bytes an element (values from byte 0, counts from byte 4 x elements): 8 bytes a
// distinct value where doubles take 16, and no page touched beyond the sort's.
struct PackedFloats {
  PageBuffer bytes;
  size_t elements = 0, size = 0;
  const float* values() const { return reinterpret_cast<const float*>(bytes.data()); }
  const uint32_t* counts() const { return reinterpret_cast<const uint32_t*>(bytes.data() + 4 * elements); }
};

// Distinct values of one group, ascending, with their counts and, with sensitivities, the sums
// of their elements' sensitivities (empty without). `counts` is empty when every count is 1 and
// there are weights (a float32 or float64 group with sensitivities whose values are all
// distinct): 8 bytes a value less, 262 MB on 32.8M values; read counts through count().
// A large float32 group without sensitivities holds its values and counts in `packed` instead
// (DistinctFloatPacked; `values` and `counts` empty): read them through WithArrays.
struct DistinctValues {
  std::vector<double> values;
  std::vector<double> counts;
  std::vector<double> weights;
  std::vector<uint16_t> bits;  // float16 groups: each value's bit pattern (0 stands for -0 too)
  PackedFloats packed;
  void Clear() { values.clear(), counts.clear(), weights.clear(), bits.clear(), packed = PackedFloats(); }
  double count(size_t v) const { return counts.empty() ? 1.0 : counts[v]; }
  size_t size() const { return packed.bytes.data() ? packed.size : values.size(); }
};

// f(values, counts, n) on d's arrays: (const float*, const uint32_t*) when packed, else (const
// double*, const double*) with counts null when every count is 1. Either converts exactly to
// double, so code written once gives the same bits on both.
template <class F>
decltype(auto) WithArrays(const DistinctValues& d, F&& f) {
  if (d.packed.bytes.data()) return f(d.packed.values(), d.packed.counts(), d.packed.size);
  return f(d.values.data(), d.counts.empty() ? static_cast<const double*>(nullptr) : d.counts.data(),
           d.values.size());
}

// A point of the general path: its clustered value, its count weight (s^2 with a per-channel
// scale s, else 1) and its sensitivity.
struct WeightedPoint {
  double x, count, sensitivity;
  bool operator<(const WeightedPoint& o) const {
    return x != o.x ? x < o.x : count != o.count ? count < o.count : sensitivity < o.sensitivity;
  }
};

// Sorts points and merges equal values, summing counts and count x sensitivity.
void MergePoints(std::vector<WeightedPoint>& pts, bool weighted, DistinctValues* d);

// A 16-bit float format: float16 (5 exponent bits) or bfloat16 (8). Both are sign and magnitude, so
// patterns order like their values within each sign; Inf and NaN are the patterns from the first
// with all exponent bits set, 0x7C00 or 0x7F80 (word inf_word of `seen`), and their negatives.
struct Float16Format {
  uint32_t inf_word;
  uint32_t shift;  // from the pattern's magnitude bits to a float's: 23 less the mantissa bits
  float scale;     // 2^(127 - the format's exponent bias)
  // A finite pattern's value: its magnitude bits in a float's place are a float 2^(bias - 127) times
  // it (subnormals too), and the scale is a power of two, so the product is exact.
  float Value(uint16_t b) const {
    const float magnitude = BitsToFloat(uint32_t(b & 0x7FFF) << shift) * scale;
    uint32_t bits;
    std::memcpy(&bits, &magnitude, 4);
    return BitsToFloat(bits | uint32_t(b & 0x8000) << 16);
  }
};
constexpr Float16Format kHalfFormat{0x7C00 / 64, 13, 0x1p112f};
constexpr Float16Format kBFloat16Format{0x7F80 / 64, 16, 1.0f};

// 16-bit float group: a histogram of bit patterns, read back in value order (negative patterns
// from the largest magnitude down, then positive ones up; -0 and +0 merge into one value 0).
// With sensitivities, `whist` (65,536 sums, all zero on arrival and on return) sums each bit
// pattern's sensitivities, read a chunk at a time into `sbuf` and released from memory as read, so
// a large group costs no more memory than a small one.
bool DistinctHalf(const Float16Format& format, const uint16_t* w, const ChannelLayout& L, uint64_t c0,
                  uint64_t c1, std::vector<uint32_t>& hist, std::vector<uint64_t>& seen,
                  const ElementWeights* sens, std::vector<double>& whist, std::vector<double>& sbuf,
                  DistinctValues* d);

// Float32 (distinct_float.cc): a comparison sort in `buf` below 2^20 elements; past it a radix
// sort of order keys inside d->values' own bytes (8 an element: room for both 4-byte key arrays),
// decoded and merged in place, so that no other large array is touched. -0 and +0 merge into one
// value, -0 when present (it sorts first). False when the group holds NaN or Inf.
// `huge_pages`: the large arrays on huge pages (util/huge_pages.h), for the weighted path's search.
bool DistinctFloat(const float* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, std::vector<float>& buf,
                   DistinctValues* d, bool huge_pages = false);

// The same into d->packed (values as floats, counts as uint32_t) for a group of 2^20 to 2^32 - 1
// elements without sensitivities: the radix sort's buffer is the result's, so nothing else is
// touched. False when the group holds NaN or Inf.
bool DistinctFloatPacked(const float* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, DistinctValues* d);

// The same with sensitivities. Each distinct value's weight is the sum of its elements'
// sensitivities in ascending order (the order of the general path's MergePoints, whose counts are
// all 1 here), so both paths give the same bits. The values are sorted alone, as without
// sensitivities; then one pass reads the sensitivities a chunk at a time: a value held by one
// element takes its sensitivity, and only elements of repeated values are kept, as (value index,
// sensitivity) pairs sorted and summed. Memory is that of the plain path plus a weight per
// distinct value and 16 bytes per repeated element (few in float32 weights).
struct RepeatedElement {
  uint64_t v;
  double s;
  bool operator<(const RepeatedElement& o) const { return v != o.v ? v < o.v : s < o.s; }
};

bool DistinctFloatWeighted(const float* w, const ChannelLayout& L, uint64_t c0, uint64_t c1,
                           const ElementWeights& sens, std::vector<float>& buf, std::vector<double>& sbuf,
                           std::vector<RepeatedElement>& repeats, DistinctValues* d);

// Float64 (distinct_double.cc): a 64-bit radix sort of order keys (two arrays of 8 bytes an
// element, the first d->values' own bytes), decoded into the values, which are merged in place:
// never more than two such arrays at once, so a 32.8M-element tensor needs 2 x 262 MB beside its
// input. -0 and +0 merge into one value, -0
// when present (it sorts first), as for float32. False when the group holds NaN or Inf.
bool DistinctDouble(const double* w, const ChannelLayout& L, uint64_t c0, uint64_t c1, DistinctValues* d,
                    bool huge_pages = false);

// The same with sensitivities, summed as DistinctFloatWeighted sums them.
bool DistinctDoubleWeighted(const double* w, const ChannelLayout& L, uint64_t c0, uint64_t c1,
                            const ElementWeights& sens, std::vector<double>& sbuf,
                            std::vector<RepeatedElement>& repeats, DistinctValues* d);

}  // namespace palettize
