// --min-output-psnr's search space (alloc/lagrange_path.h): every allocation on the Lagrangian path
// is the exhaustive-search optimum at its own bytes, and the path ascends in bytes and descends in cost.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "alloc/lagrange_path.h"
#include "exhaustive_allocation.h"

using namespace palettize;

using Curves = AllocationCurves;

TEST_CASE("Each allocation on the Lagrangian path is optimal at its bytes", "[alloc]") {
  std::mt19937 rng(15);
  std::uniform_int_distribution<int> weights(1, 6), options(2, 6);
  std::uniform_int_distribution<uint64_t> bytes(1, 60);
  std::uniform_real_distribution<double> cost(0, 100);
  size_t steps = 0;
  for (int trial = 0; trial < 500; ++trial) {
    Curves curves(size_t(weights(rng)));
    for (auto& c : curves) {
      const int k = options(rng);
      for (int j = 0; j < k; ++j) c.push_back({bytes(rng), std::floor(cost(rng))});
    }
    const std::vector<std::vector<int>> path = LagrangianPath(curves);
    REQUIRE(!path.empty());
    uint64_t last_bytes = 0;
    double last_cost = INFINITY;
    for (const std::vector<int>& step : path) {
      uint64_t b = 0;
      double c = 0;
      for (size_t i = 0; i < curves.size(); ++i) {
        b += curves[i][size_t(step[i])].bytes;
        c += curves[i][size_t(step[i])].cost;
      }
      if (last_bytes != 0) CHECK(b > last_bytes);
      CHECK(c < last_cost);
      CHECK(c == Approx(ExhaustiveAllocation(curves, b)).margin(1e-9));
      last_bytes = b;
      last_cost = c;
      ++steps;
    }
  }
  CHECK(steps > 1000);  // the trials had paths of many steps, not one point each
}

TEST_CASE("The Lagrangian path of an empty curve is empty", "[alloc]") {
  CHECK(LagrangianPath({{{1, 1.0}}, {}}).empty());
  const auto path = LagrangianPath({{{4, 0.0}, {1, 3.0}}});
  REQUIRE(path.size() == 2);
  CHECK(path[0] == std::vector<int>{1});
  CHECK(path[1] == std::vector<int>{0});
}
