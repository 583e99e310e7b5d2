#include "cluster/cell_lloyd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace palettize {

namespace {

// A cell's box in float coordinates, with a reference point q (the box's centre, in float) and
// the largest distance r from q to any point of the box.
struct CellBox {
  float lo[2], hi[2];
  float q[2];
  double r;
};

CellBox BoxOf(uint64_t key) {
  CellBox b;
  double r2 = 0;
  for (int t = 0; t < 2; ++t) {
    float lo, hi;
    CellRange(uint32_t(t == 0 ? key >> 32 : key), &lo, &hi);
    b.lo[t] = lo, b.hi[t] = hi;
    b.q[t] = float((double(lo) + double(hi)) / 2);
    const double reach = std::max(double(b.q[t]) - double(lo), double(hi) - double(b.q[t]));
    r2 += reach * reach;
  }
  b.r = std::sqrt(r2);
  return b;
}

}  // namespace

bool CellLloyd(const double* points, size_t n, const CoresetIndex& index, std::vector<double> centroids,
               size_t k, int max_iterations, double tol, LloydRun* run) {
  constexpr size_t dim = 2;
  constexpr uint32_t kMixed = UINT32_MAX;  // a cell searched point by point
  const size_t cells = index.keys.size();
  const size_t kp = (k + kNearestLanes - 1) / kNearestLanes * kNearestLanes;
  const NearestTwoFn nearest_two = NearestTwoFor(dim);
  std::vector<CellBox> box(cells);
  for (size_t c = 0; c < cells; ++c) box[c] = BoxOf(index.keys[c]);
  double signal = 0;
  for (size_t i = 0; i < n; ++i)
    signal += points[2 * i] * points[2 * i] + points[2 * i + 1] * points[2 * i + 1];
  // The points of the cells ever searched point by point, gathered in input order: cell c's
  // are xy[2 begin[c]..2 (begin[c] + count c)), begin[c] = kMixed while not gathered. Gathering
  // every cell once costs as much as five assignments (a scatter into tens of thousands of
  // streams), so a pass over the points gathers the cells that are mixed, and with them those
  // within twice their radius of a boundary, only when a cell not gathered yet is mixed.
  std::vector<uint32_t> begin(cells, kMixed);
  std::vector<double> xy;
  std::vector<uint32_t> labels;  // the gathered points' labels, while their cell stays mixed
  std::vector<char> wanted(cells, 0);
  auto gather = [&] {
    std::vector<uint32_t> next(cells, 0);
    size_t total = xy.size() / 2;
    for (size_t c = 0; c < cells; ++c)
      if (wanted[c]) begin[c] = uint32_t(total), next[c] = uint32_t(total), total += size_t(index.counts[c]);
    xy.resize(2 * total);
    labels.resize(total, kMixed);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t c = index.cell_of[i];
      if (!wanted[c]) continue;
      const uint32_t q = next[c]++;
      xy[2 * size_t(q)] = points[2 * i];
      xy[2 * size_t(q) + 1] = points[2 * i + 1];
    }
    std::fill(wanted.begin(), wanted.end(), 0);
  };

  std::vector<float> ct(kp * dim, std::numeric_limits<float>::max());
  std::vector<double> fc(k * dim);
  // A cell's label when assigned whole, else kMixed.
  std::vector<uint32_t> cell_label(cells, kMixed);
  std::vector<double> sums(k * dim), mass(k), fresh(k * dim);
  bool first = true;
  // Whether every point of cell c takes centroid a in the float search, its box's radius taken
  // `spread` times: the box test through the centre first, then the exact one. d_a^2 - d_j^2 =
  // 2 p.(c_j - c_a) + |c_a|^2 - |c_j|^2 is linear in p, so its largest value over the box is at a
  // corner; it must stay below a margin wider than the float search's rounding of both squares
  // (a few units of 2^-24 of each).
  auto whole = [&](size_t c, uint32_t a, float b1, float b2, double spread) {
    const CellBox& b = box[c];
    const double r = spread * b.r;
    if ((std::sqrt(double(b1)) + r) * (1 + 1e-5) + 1e-18 < (std::sqrt(double(b2)) - r) * (1 - 1e-5))
      return true;
    if (spread != 1) return false;
    const double ax = fc[a * dim], ay = fc[a * dim + 1], a2 = ax * ax + ay * ay;
    const double p2 = std::max(double(b.lo[0]) * b.lo[0], double(b.hi[0]) * b.hi[0]) +
                      std::max(double(b.lo[1]) * b.lo[1], double(b.hi[1]) * b.hi[1]);
    for (size_t j = 0; j < k; ++j) {
      if (j == a) continue;
      const double jx = fc[j * dim], jy = fc[j * dim + 1], j2 = jx * jx + jy * jy;
      const double dx = jx - ax, dy = jy - ay;
      const double g =
          2 * (std::max(b.lo[0] * dx, b.hi[0] * dx) + std::max(b.lo[1] * dy, b.hi[1] * dy)) + a2 - j2;
      if (!(g + 1e-6 * (4 * p2 + 2 * a2 + 2 * j2) + 1e-30 < 0)) return false;
    }
    return true;
  };
  // One assignment to `centroids`: each cell whole or its points one by one; the sums and masses
  // of the new labels; the number of points whose label changed (all of them the first time).
  auto assign = [&]() -> size_t {
    for (size_t c = 0; c < k; ++c)
      for (size_t t = 0; t < dim; ++t) {
        ct[t * kp + c] = float(centroids[c * dim + t]);
        fc[c * dim + t] = ct[t * kp + c];
      }
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(mass.begin(), mass.end(), 0.0);
    size_t changed = first ? n : 0;
    bool wants = false;
    const std::vector<uint32_t> before = cell_label;
    for (size_t c = 0; c < cells; ++c) {
      uint32_t a;
      float b1, b2;
      nearest_two(box[c].q, ct.data(), kp, dim, &a, &b1, &b2);
      const bool is_whole = whole(c, a, b1, b2, 1.0);
      cell_label[c] = is_whole ? a : kMixed;
      if (begin[c] != kMixed) continue;
      wants |= !is_whole;
      wanted[c] = !is_whole || !whole(c, a, b1, b2, 2.0);
    }
    if (wants)
      gather();
    else
      std::fill(wanted.begin(), wanted.end(), 0);
    for (size_t c = 0; c < cells; ++c) {
      const uint32_t a = cell_label[c], was = before[c];
      const uint32_t b0 = begin[c], b1 = b0 == kMixed ? b0 : b0 + uint32_t(index.counts[c]);
      if (a != kMixed) {
        if (!first && was != a) {
          if (was != kMixed)
            changed += size_t(index.counts[c]);
          else
            for (uint32_t q = b0; q < b1; ++q) changed += labels[q] != a;
        }
        sums[a * dim] += index.sums[c * dim];
        sums[a * dim + 1] += index.sums[c * dim + 1];
        mass[a] += index.counts[c];
        continue;
      }
      for (uint32_t q = b0; q < b1; ++q) {
        const double* p = &xy[2 * size_t(q)];
        const float x[2] = {float(p[0]), float(p[1])};
        uint32_t best;
        float d1, d2;
        nearest_two(x, ct.data(), kp, dim, &best, &d1, &d2);
        if (!first) changed += best != (was != kMixed ? was : labels[q]);
        labels[q] = best;
        sums[best * dim] += p[0];
        sums[best * dim + 1] += p[1];
        mass[best] += 1;
      }
    }
    first = false;
    return changed;
  };

  run->labels.clear();
  assign();
  double previous = std::numeric_limits<double>::infinity();
  for (int it = 0;; ++it) {
    double explained = 0;
    for (size_t c = 0; c < k; ++c) {
      if (!(mass[c] > 0)) return false;
      for (size_t t = 0; t < dim; ++t) {
        fresh[c * dim + t] = sums[c * dim + t] / mass[c];
        explained += sums[c * dim + t] * fresh[c * dim + t];
      }
    }
    const double sse = signal - explained;
    run->iterations = it;
    run->weighted_sse = sse;
    const bool stalled = it > 0 && previous - sse <= tol * previous;
    centroids.swap(fresh);
    if (it >= max_iterations || stalled) break;
    previous = sse;
    if (assign() == 0) {
      run->iterations = it + 1;
      break;
    }
  }
  run->centroids = std::move(centroids);
  return true;
}

}  // namespace palettize
