// NumPy broadcasting, as MIL's elementwise ops use it: shapes are aligned at their last axis, and
// each dimension pair must be equal or one of them 1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize::eval {

// The broadcast shape of `a` and `b`; false when some dimension pair is neither equal nor 1.
bool BroadcastShape(const std::vector<int64_t>& a, const std::vector<int64_t>& b, std::vector<int64_t>* out);

// The element strides of an input of shape `in` read at each axis of the broadcast shape `out`
// (0 along an axis `in` lacks or has of size 1). `in` must broadcast to `out`.
std::vector<size_t> BroadcastStrides(const std::vector<int64_t>& in, const std::vector<int64_t>& out);

// Calls f(o, ia, ib) for every element o of shape `out` in row-major order, with the offsets of
// the two inputs whose strides (BroadcastStrides) are `sa` and `sb`.
template <typename F>
void ForEachBroadcast(const std::vector<int64_t>& out, const std::vector<size_t>& sa,
                      const std::vector<size_t>& sb, F&& f) {
  size_t total = 1;
  for (int64_t d : out) total *= size_t(d);
  if (total == 0) return;
  const size_t rank = out.size();
  std::vector<int64_t> idx(rank, 0);
  size_t ia = 0, ib = 0;
  for (size_t o = 0; o < total; ++o) {
    f(o, ia, ib);
    for (size_t k = rank; k-- > 0;) {
      ia += sa[k];
      ib += sb[k];
      if (++idx[k] < out[k]) break;
      ia -= sa[k] * size_t(out[k]);
      ib -= sb[k] * size_t(out[k]);
      idx[k] = 0;
    }
  }
}

// Calls f(idx, o) for every element o of `shape` in row-major order, idx its multi-index.
template <typename F>
void ForEachIndex(const std::vector<int64_t>& shape, F&& f) {
  size_t total = 1;
  for (int64_t d : shape) total *= size_t(d);
  std::vector<int64_t> idx(shape.size(), 0);
  for (size_t o = 0; o < total; ++o) {
    f(idx, o);
    for (size_t k = shape.size(); k-- > 0;) {
      if (++idx[k] < shape[k]) break;
      idx[k] = 0;
    }
  }
}

// `axis` (negative counts from the end) as an index in [0, rank), or -1 when out of range.
int NormalizeAxis(int64_t axis, int rank);

// Row-major strides of `shape`.
std::vector<size_t> Strides(const std::vector<int64_t>& shape);

}  // namespace palettize::eval
