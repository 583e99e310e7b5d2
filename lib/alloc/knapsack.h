// The multiple-choice knapsack behind bit allocation (issue 14): one option per curve, total bytes
// within a budget, least total cost. Exact: a Lagrangian bound from the curves' lower convex hulls,
// a greedy feasible point from the same sweep, then a Pareto dynamic program over the options the
// bound cannot rule out. See knapsack.cc for the method and why each bound holds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize {

struct KnapsackOption {
  uint64_t bytes = 0;
  double cost = 0;  // finite, >= 0
};

// The search stops at either limit and returns the best assignment found with a proven bound.
struct KnapsackLimits {
  uint64_t max_nodes = 20'000'000;  // dynamic-programming states kept, over all layers
  double max_seconds = 10.0;
};

struct KnapsackSolution {
  std::vector<int> chosen;  // per curve, an index into its options
  uint64_t bytes = 0;       // sum of the chosen options' bytes, <= budget
  double cost = 0;          // sum of the chosen options' costs, summed in curve order
  // No assignment within the budget costs less than this. Equal to `cost` when the search
  // finished (the optimum, up to the rounding of double sums: 1e-12 relative).
  double lower_bound = 0;
  bool proven = false;  // the search finished: `cost` is the optimum
  uint64_t nodes = 0;   // states the search kept (0 when the bound closed the gap at once)
};

// One curve's efficient options (no other has both fewer or equal bytes and lower or equal cost),
// as indices into `options`, ascending in bytes and descending in cost.
std::vector<int> EfficientOptions(const std::vector<KnapsackOption>& options);

// Indices into `front` (EfficientOptions of `options`) of its lower convex hull's vertices.
std::vector<size_t> LowerHull(const std::vector<KnapsackOption>& options, const std::vector<int>& front);

// The smallest and largest total bytes any assignment reaches: sums of each curve's smallest and
// largest option.
void KnapsackRange(const std::vector<std::vector<KnapsackOption>>& curves, uint64_t* smallest,
                   uint64_t* largest);

// Solves the knapsack. False (and `out` untouched) when even the smallest options exceed the
// budget or a curve is empty. Deterministic: the same curves and budget give the same answer
// whenever the search finishes within the limits.
bool SolveKnapsack(const std::vector<std::vector<KnapsackOption>>& curves, uint64_t budget,
                   const KnapsackLimits& limits, KnapsackSolution* out);

}  // namespace palettize
