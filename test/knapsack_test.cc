// The bit allocation's solver against exhaustive search, and SolveAllocation's objectives and errors.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "alloc/allocate.h"
#include "alloc/knapsack.h"
#include "exhaustive_allocation.h"

using namespace palettize;

namespace {

using Curves = AllocationCurves;

// Random curves: bytes from a small range (so that ties and equal sizes occur), costs either
// falling with bytes like a rate-distortion curve or arbitrary (non-convex, dominated options),
// some repeated.
Curves RandomCurves(std::mt19937& rng) {
  std::uniform_int_distribution<int> weights(2, 8), options(3, 7), kind(0, 2);
  Curves curves(size_t(weights(rng)));
  for (auto& c : curves) {
    const int k = options(rng);
    const int shape = kind(rng);
    std::uniform_int_distribution<uint64_t> bytes(1, shape == 0 ? 12 : 200);
    std::uniform_real_distribution<double> cost(0, 100);
    for (int j = 0; j < k; ++j) c.push_back({bytes(rng), std::floor(cost(rng) * (shape == 2 ? 1 : 100)) / 4});
    if (shape == 1) {  // decreasing costs along ascending bytes, as real curves
      std::sort(c.begin(), c.end(), [](auto& a, auto& b) { return a.bytes < b.bytes; });
      std::vector<double> costs;
      for (auto& o : c) costs.push_back(o.cost);
      std::sort(costs.rbegin(), costs.rend());
      for (size_t j = 0; j < c.size(); ++j) c[j].cost = costs[j];
    }
    if (kind(rng) == 0) c.push_back(c[0]);  // an exact duplicate option
  }
  return curves;
}

}  // namespace

TEST_CASE("SolveKnapsack matches exhaustive search on random small instances", "[alloc]") {
  std::mt19937 rng(14);
  int solved = 0, searched = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    const Curves curves = RandomCurves(rng);
    uint64_t smallest = 0, largest = 0;
    KnapsackRange(curves, &smallest, &largest);
    std::uniform_int_distribution<uint64_t> pick(smallest > 0 ? smallest - 1 : 0, largest + 1);
    const uint64_t budget = pick(rng);
    KnapsackSolution s;
    const bool ok = SolveKnapsack(curves, budget, KnapsackLimits(), &s);
    const double best = ExhaustiveAllocation(curves, budget);
    INFO("trial " << trial << " budget " << budget);
    REQUIRE(ok == std::isfinite(best));
    if (!ok) continue;
    ++solved;
    searched += s.nodes > 0;
    uint64_t bytes = 0;
    double cost = 0;
    REQUIRE(s.chosen.size() == curves.size());
    for (size_t i = 0; i < curves.size(); ++i) {
      REQUIRE(s.chosen[i] >= 0);
      REQUIRE(size_t(s.chosen[i]) < curves[i].size());
      bytes += curves[i][size_t(s.chosen[i])].bytes;
      cost += curves[i][size_t(s.chosen[i])].cost;
    }
    CHECK(bytes == s.bytes);
    CHECK(bytes <= budget);
    CHECK(cost == Approx(s.cost).epsilon(1e-12));
    CHECK(s.proven);
    CHECK(s.lower_bound == s.cost);
    CHECK(s.cost <= best + 1e-9 * std::max(1.0, best));
  }
  CHECK(solved > 2000);
  CHECK(searched > 100);  // the search ran, not only the greedy
}

TEST_CASE("SolveKnapsack: a stopped search keeps a feasible point and a true lower bound", "[alloc]") {
  std::mt19937 rng(7);
  int stopped = 0;
  for (int trial = 0; trial < 300; ++trial) {
    Curves curves = RandomCurves(rng);
    uint64_t smallest = 0, largest = 0;
    KnapsackRange(curves, &smallest, &largest);
    const uint64_t budget = (smallest + largest) / 2;
    KnapsackLimits limits;
    limits.max_nodes = 2;
    KnapsackSolution s;
    REQUIRE(SolveKnapsack(curves, budget, limits, &s));
    const double best = ExhaustiveAllocation(curves, budget);
    CHECK(s.bytes <= budget);
    CHECK(s.lower_bound <= best + 1e-9 * std::max(1.0, best));
    CHECK(s.cost >= best - 1e-9 * std::max(1.0, best));
    stopped += !s.proven;
  }
  CHECK(stopped > 0);
}

TEST_CASE("SolveKnapsack: 3,000 weights of 6 candidates, the optimum proven", "[alloc]") {
  // Curves shaped like real weights': bytes n * nbits / 8 plus tables, cost ~ 4^-nbits, with
  // many weights of equal shapes (ties) and some uncompressed options.
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> shape(0, 40);
  std::lognormal_distribution<double> scale(0, 1);
  Curves curves;
  uint64_t elements = 0;
  for (int i = 0; i < 3000; ++i) {
    const uint64_t n = 4096ull << (shape(rng) % 8);
    const double s = (i % 3 == 0) ? 1.0 : scale(rng);
    std::vector<KnapsackOption> c;
    for (int b : {1, 2, 4, 6, 8})
      c.push_back({n * b / 8 + 2 * (1ull << b), s * double(n) * std::ldexp(1.0, -2 * b)});
    c.push_back({2 * n, 0});
    curves.push_back(c);
    elements += n;
  }
  for (double bpw : {1.5, 3.0, 4.25, 5.0, 7.9}) {
    const uint64_t budget = uint64_t(bpw * double(elements) / 8);
    KnapsackSolution s;
    REQUIRE(SolveKnapsack(curves, budget, KnapsackLimits(), &s));
    INFO("bpw " << bpw << " nodes " << s.nodes);
    CHECK(s.bytes <= budget);
    CHECK(s.proven);
    CHECK(s.lower_bound == s.cost);
  }
}

namespace {

Allocation ThreeWeights() {
  Allocation a;
  // Weight w has 100 elements: 1-bit 20 bytes, 4-bit 60 bytes, dense 200 bytes.
  for (int w = 0; w < 3; ++w) {
    WeightAllocation wa;
    wa.name = "w" + std::to_string(w);
    wa.elements = 100;
    const double s = 1 + w;
    wa.candidates = {{1, 20, 100 * s, 100 * s, 3.0 * (w + 1)},
                     {4, 60, 10 * s, 10 * s, 12.0 + w},
                     {0, 200, 0, 0, INFINITY}};
    a.weights.push_back(wa);
  }
  return a;
}

}  // namespace

TEST_CASE("SolveAllocation: budgets, min-snr and impossible budgets", "[alloc]") {
  Allocation a = ThreeWeights();
  // 2.4 bpw = 90 bytes: 4-bit on one weight (60) and 1-bit on the others (20 + 20) is 100 > 90,
  // so all 1-bit.
  REQUIRE(SolveAllocation(AllocationObjective::kTargetBpw, 2.4, &a).ok());
  CHECK(a.bytes == 60);
  CHECK(a.elements == 300);
  CHECK(a.bpw == Approx(1.6));
  CHECK(a.gap == 0);
  // 100 bytes: the weight whose 4-bit saves most (w2: 300 -> 30) takes it.
  REQUIRE(SolveAllocation(AllocationObjective::kTargetSize, 100, &a).ok());
  CHECK(a.weights[2].chosen == 1);
  CHECK(a.weights[0].chosen == 0);
  CHECK(a.bytes == 100);
  CHECK(a.total_cost == Approx(100 + 200 + 30));
  CHECK(a.objective == AllocationObjective::kTargetSize);
  // Min SNR 4 dB: w0 (1-bit 3 dB) needs 4-bit, w1 and w2 keep 1-bit (6, 9 dB).
  REQUIRE(SolveAllocation(AllocationObjective::kMinSnr, 4, &a).ok());
  CHECK(a.weights[0].chosen == 1);
  CHECK(a.weights[1].chosen == 0);
  CHECK(a.weights[2].chosen == 0);
  CHECK(a.bytes == 100);
  // Above every palettized SNR: all uncompressed.
  REQUIRE(SolveAllocation(AllocationObjective::kMinSnr, 20, &a).ok());
  CHECK(a.bytes == 600);
  CHECK(a.total_cost == 0);

  Status st = SolveAllocation(AllocationObjective::kTargetBpw, 1.5, &a);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "target_bpw 1.5: below the smallest reachable 1.60 bpw (largest 16.00)");
  st = SolveAllocation(AllocationObjective::kTargetSize, 59.9, &a);
  CHECK(
      st.message() ==
      "target_size 59 bytes: below the smallest reachable 60 bytes, 1.60 bpw (largest 600 bytes, 16.00 bpw)");
  st = SolveAllocation(AllocationObjective::kTargetBpw, NAN, &a);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(SolveAllocation(AllocationObjective::kTargetBpw, 1.6, &a).ok());
  CHECK(a.bytes == 60);
  CHECK(BudgetBytes(AllocationObjective::kTargetBpw, 2.5, 7) == 2);  // floor(17.5 / 8)
}
