#include "cluster/vector_coreset.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

namespace palettize {
namespace {

// The cell coordinate of x: its float's sign, exponent and top mantissa bits (-0 as +0).
uint32_t CellKey(double x) {
  const float f = float(x) + 0.0f;
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits >> (23 - kCoresetMantissaBits);
}

}  // namespace

void CellRange(uint32_t half, float* lo, float* hi) {
  const uint32_t first = half << (23 - kCoresetMantissaBits);
  const uint32_t last = first | ((uint32_t(1) << (23 - kCoresetMantissaBits)) - 1);
  float a, b;
  std::memcpy(&a, &first, sizeof a);
  std::memcpy(&b, &last, sizeof b);
  // Sign and magnitude: for negative keys the last pattern is the most negative value.
  *lo = std::min(a, b);
  *hi = std::max(a, b);
}

bool GridCoreset2(const double* points, size_t n, size_t max_cells, WeightedPoints* cells,
                  CoresetIndex* index) {
  // The table starts small and doubles at half full, so that it stays in cache: sized for
  // max_cells at once (a quarter of the points), its lookups missed the cache at every point.
  size_t cap = 1024;
  std::vector<uint64_t> keys(cap);
  std::vector<uint32_t> slot(cap, UINT32_MAX);
  cells->count = 0;
  cells->dim = 2;
  cells->coords.clear();
  cells->weights.clear();
  // Each cell's coordinate sums, kept in the index when it is wanted (CellLloyd adds cells whole);
  // the means are made from them at the end.
  std::vector<double> own_sums;
  std::vector<double>& sums = index ? index->sums : own_sums;
  sums.clear();
  if (index) index->cell_of.resize(n);
  auto home = [&](uint64_t key) {  // Fibonacci hashing: the top bits of key x 2^64/phi
    return size_t((key * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
  };
  for (size_t i = 0; i < n; ++i) {
    const double* p = points + 2 * i;
    if (!std::isfinite(p[0]) || !std::isfinite(p[1])) return false;
    const uint64_t key = uint64_t(CellKey(p[0])) << 32 | CellKey(p[1]);
    size_t s = home(key);
    while (slot[s] != UINT32_MAX && keys[s] != key) s = (s + 1) & (cap - 1);
    if (slot[s] == UINT32_MAX) {
      if (cells->count == max_cells) return false;
      if (2 * (cells->count + 1) > cap) {
        cap *= 2;  // home() now hashes into the grown table
        std::vector<uint64_t> grown_keys(cap);
        std::vector<uint32_t> grown_slot(cap, UINT32_MAX);
        for (size_t j = 0; j < slot.size(); ++j) {
          if (slot[j] == UINT32_MAX) continue;
          size_t t = home(keys[j]);
          while (grown_slot[t] != UINT32_MAX) t = (t + 1) & (cap - 1);
          grown_slot[t] = slot[j], grown_keys[t] = keys[j];
        }
        keys = std::move(grown_keys);
        slot = std::move(grown_slot);
        s = home(key);
        while (slot[s] != UINT32_MAX) s = (s + 1) & (cap - 1);
      }
      slot[s] = uint32_t(cells->count++);
      keys[s] = key;
      sums.push_back(0.0);
      sums.push_back(0.0);
      cells->weights.push_back(0.0);
    }
    const size_t c = slot[s];
    if (index) index->cell_of[i] = uint32_t(c);
    sums[2 * c] += p[0];
    sums[2 * c + 1] += p[1];
    cells->weights[c] += 1.0;
  }
  if (index) {
    index->counts = cells->weights;
    index->keys.assign(cells->count, 0);
    for (size_t j = 0; j < cap; ++j)
      if (slot[j] != UINT32_MAX) index->keys[slot[j]] = keys[j];
  }
  cells->coords.resize(sums.size());
  for (size_t c = 0; c < cells->count; ++c) {
    cells->coords[2 * c] = sums[2 * c] / cells->weights[c];
    cells->coords[2 * c + 1] = sums[2 * c + 1] / cells->weights[c];
  }
  return true;
}

}  // namespace palettize
