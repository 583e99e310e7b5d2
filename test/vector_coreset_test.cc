// The grid coreset of two-dimensional vector k-means, and the clustering found through it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include <tbb/global_control.h>

#include "cluster/kmeans_vector.h"
#include "cluster/vector_coreset.h"
#include "cluster/vector_lloyd.h"

using namespace palettize;

namespace {

std::vector<double> StudentPairs(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<double> student(4);
  std::vector<double> pts(2 * n);
  for (auto& v : pts) v = double(float(student(rng) * 0.02));
  return pts;
}

// A cell: the float's sign, exponent and top 3 mantissa bits of each coordinate (-0 as +0).
std::pair<uint32_t, uint32_t> Cell(const double* p) {
  auto key = [](double x) {
    const float f = float(x) + 0.0f;
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits >> 20;
  };
  return {key(p[0]), key(p[1])};
}

}  // namespace

TEST_CASE("grid coreset: one weighted point per cell at its points' mean", "[vector_coreset]") {
  std::vector<double> pts = StudentPairs(100000, 3);
  pts[0] = -0.0;  // -0 and +0 share a cell
  pts[2] = 0.0;
  pts[1] = pts[3] = 0.5;
  std::map<std::pair<uint32_t, uint32_t>, std::vector<double>> sums;  // count, sum x, sum y
  for (size_t i = 0; i < 100000; ++i) {
    auto& s = sums[Cell(&pts[2 * i])];
    if (s.empty()) s.assign(3, 0.0);
    s[0] += 1;
    s[1] += pts[2 * i];
    s[2] += pts[2 * i + 1];
  }
  WeightedPoints cells;
  REQUIRE(GridCoreset2(pts.data(), 100000, 100000, &cells));
  REQUIRE(cells.count == sums.size());
  REQUIRE(cells.count < 100000 / 4);  // heavy-tailed pairs merge well
  double total = 0;
  for (size_t c = 0; c < cells.count; ++c) {
    const auto& s = sums.at(Cell(cells.Point(c)));  // the mean lies in its own cell
    CHECK(cells.weights[c] == s[0]);
    CHECK(cells.Point(c)[0] == s[1] / s[0]);
    CHECK(cells.Point(c)[1] == s[2] / s[0]);
    total += cells.weights[c];
  }
  CHECK(total == 100000);
  // The first cell is the first point's: cells come in order of first occurrence.
  CHECK(Cell(cells.Point(0)) == Cell(&pts[0]));
  // With the index: the same cells, and each cell's sums and count.
  WeightedPoints indexed;
  CoresetIndex index;
  REQUIRE(GridCoreset2(pts.data(), 100000, 100000, &indexed, &index));
  CHECK(indexed.coords == cells.coords);
  CHECK(indexed.weights == cells.weights);
  REQUIRE(index.sums.size() == 2 * cells.count);
  REQUIRE(index.counts.size() == cells.count);
  for (size_t c = 0; c < cells.count; ++c) {
    const auto& s = sums.at(Cell(cells.Point(c)));
    CHECK(index.counts[c] == s[0]);
    CHECK(index.sums[2 * c] == s[1]);
    CHECK(index.sums[2 * c + 1] == s[2]);
  }

  // Too many cells, or a point that is not finite: no coreset.
  CHECK_FALSE(GridCoreset2(pts.data(), 100000, sums.size() - 1, &cells));
  pts[40001] = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(GridCoreset2(pts.data(), 100000, 100000, &cells));
  pts[40001] = std::numeric_limits<double>::infinity();
  CHECK_FALSE(GridCoreset2(pts.data(), 100000, 100000, &cells));
}

TEST_CASE("vector k-means through the coreset: near a local optimum, any thread count", "[vector_coreset]") {
  const size_t n = 200000, k = 16;
  const std::vector<double> pts = StudentPairs(n, 11);
  WeightedPoints cells;
  REQUIRE(GridCoreset2(pts.data(), n, n / 4, &cells));  // so VectorKMeans takes the coreset path
  VectorKMeansOptions opt;
  opt.seed = 5;
  VectorClustering one, many;
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
    one = VectorKMeans(pts.data(), n, 2, k, opt);
  }
  {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 4);
    many = VectorKMeans(pts.data(), n, 2, k, opt);
  }
  REQUIRE(one.centroids.size() == 2 * k);
  CHECK(std::memcmp(one.centroids.data(), many.centroids.data(), one.centroids.size() * 8) == 0);
  CHECK(one.labels == many.labels);
  // Lloyd on every point, run to a fixed point from the result, gains little: the coreset's
  // clustering is close to a local optimum of the points themselves.
  WeightedPoints all;
  all.count = n;
  all.dim = 2;
  all.coords = pts;
  all.weights.assign(n, 1.0);
  const LloydRun converged = VectorLloyd(all, k).Iterate(one.centroids, 1000, 0.0);
  CHECK(converged.weighted_sse <= one.sse);
  CHECK(converged.weighted_sse >= one.sse * 0.995);
}

TEST_CASE("Lloyd from several starts keeps the run of least error, any thread count", "[vector_coreset]") {
  const size_t n = 60000, k = 16;
  const std::vector<double> pts = StudentPairs(n, 21);
  WeightedPoints all;
  all.count = n;
  all.dim = 2;
  all.coords = pts;
  all.weights.assign(n, 1.0);
  const VectorLloyd lloyd(all, k);
  std::vector<std::vector<double>> starts;
  std::vector<LloydRun> alone;
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    starts.push_back(lloyd.Seed(seed));
    alone.push_back(lloyd.Iterate(starts.back(), 300, 1e-4));
  }
  size_t best = 0;
  for (size_t s = 1; s < alone.size(); ++s)
    if (alone[s].weighted_sse < alone[best].weighted_sse) best = s;
  // Different starts end in different local optima here, so the choice matters.
  bool distinct = false;
  for (const LloydRun& r : alone) distinct |= r.weighted_sse != alone[best].weighted_sse;
  REQUIRE(distinct);
  for (int threads : {1, 4}) {
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, size_t(threads));
    const LloydRun kept = lloyd.IterateBest(starts, 300, 1e-4);
    INFO("threads " << threads);
    CHECK(kept.weighted_sse == alone[best].weighted_sse);
    REQUIRE(kept.centroids.size() == alone[best].centroids.size());
    CHECK(std::memcmp(kept.centroids.data(), alone[best].centroids.data(), kept.centroids.size() * 8) == 0);
    CHECK(kept.labels == alone[best].labels);
  }
  // One start alone: that start's run.
  const LloydRun single = lloyd.IterateBest({starts[best]}, 300, 1e-4);
  CHECK(single.weighted_sse == alone[best].weighted_sse);
}
