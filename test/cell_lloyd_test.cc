// Lloyd on every point a cell at a time (cell_lloyd.h) against VectorLloyd on the points.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "cluster/cell_lloyd.h"
#include "cluster/vector_coreset.h"
#include "cluster/vector_lloyd.h"
#include "util/half.h"

using namespace palettize;

namespace {

// Float16 pairs of Student-t(4) x 0.02 weights, some of them exactly 0, -0 or subnormal: their sums
// in double are exact in any order, so both ways of summing give the same means.
std::vector<double> HalfPairs(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<double> student(4);
  std::vector<double> pts(2 * n);
  for (size_t i = 0; i < pts.size(); ++i) {
    pts[i] = RoundToHalf(student(rng) * 0.02);
    if (i % 997 == 0) pts[i] = i % 2 ? -0.0 : 0.0;
    if (i % 1009 == 0) pts[i] = RoundToHalf(student(rng) * 1e-6);
  }
  return pts;
}

}  // namespace

TEST_CASE("cell ranges hold their points' float coordinates", "[cell_lloyd]") {
  const std::vector<double> pts = HalfPairs(50000, 3);
  WeightedPoints cells;
  CoresetIndex index;
  REQUIRE(GridCoreset2(pts.data(), 50000, 50000, &cells, &index));
  REQUIRE(index.keys.size() == cells.count);
  REQUIRE(index.cell_of.size() == 50000);
  for (size_t i = 0; i < 50000; ++i) {
    const uint64_t key = index.keys[index.cell_of[i]];
    for (int t = 0; t < 2; ++t) {
      float lo, hi;
      CellRange(uint32_t(t == 0 ? key >> 32 : key), &lo, &hi);
      const float x = float(pts[2 * i + size_t(t)]);
      INFO("point " << i << " coordinate " << t << " value " << x);
      REQUIRE(lo <= x);
      REQUIRE(x <= hi);
      REQUIRE(lo <= hi);
    }
  }
}

TEST_CASE("cell by cell Lloyd is Lloyd on the points", "[cell_lloyd]") {
  const size_t n = 120000;
  for (size_t k : {4, 16, 33}) {
    const std::vector<double> pts = HalfPairs(n, 17 + k);
    WeightedPoints cells;
    CoresetIndex index;
    REQUIRE(GridCoreset2(pts.data(), n, n / 4, &cells, &index));
    const VectorLloyd on_points(PointsView{pts.data(), nullptr, n, 2}, k);
    for (uint64_t seed : {1, 2}) {
      const std::vector<double> start = on_points.Seed(seed);
      for (double tol : {1e-4, 0.0}) {
        const LloydRun want = on_points.Iterate(start, 300, tol);
        LloydRun got;
        REQUIRE(CellLloyd(pts.data(), n, index, start, k, 300, tol, &got));
        INFO("k=" << k << " seed=" << seed << " tol=" << tol);
        CHECK(got.iterations == want.iterations);
        REQUIRE(got.centroids.size() == want.centroids.size());
        CHECK(std::memcmp(got.centroids.data(), want.centroids.data(), 8 * want.centroids.size()) == 0);
        CHECK(got.weighted_sse == Approx(want.weighted_sse).epsilon(1e-9));
      }
    }
  }
}

TEST_CASE("cell by cell Lloyd declines a start that empties a cluster", "[cell_lloyd]") {
  const size_t n = 20000, k = 8;
  const std::vector<double> pts = HalfPairs(n, 5);
  WeightedPoints cells;
  CoresetIndex index;
  REQUIRE(GridCoreset2(pts.data(), n, n, &cells, &index));
  std::vector<double> start = VectorLloyd(PointsView{pts.data(), nullptr, n, 2}, k).Seed(1);
  start[2 * (k - 1)] = start[2 * (k - 1) + 1] = 100.0;  // nearest to no point
  LloydRun run;
  CHECK_FALSE(CellLloyd(pts.data(), n, index, start, k, 300, 1e-4, &run));
}
