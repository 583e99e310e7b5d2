// The bit allocation's reference: the least total cost within a byte budget over every assignment
// of candidates, by enumeration (small instances only), for the solver's tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "alloc/knapsack.h"

using AllocationCurves = std::vector<std::vector<palettize::KnapsackOption>>;

// The least cost within `budget` over every assignment (infinity when none fits).
inline double ExhaustiveAllocation(const AllocationCurves& curves, uint64_t budget) {
  double best = INFINITY;
  std::vector<size_t> at(curves.size(), 0);
  while (true) {
    uint64_t bytes = 0;
    double cost = 0;
    for (size_t i = 0; i < curves.size(); ++i) bytes += curves[i][at[i]].bytes, cost += curves[i][at[i]].cost;
    if (bytes <= budget) best = std::min(best, cost);
    size_t i = 0;
    while (i < curves.size() && ++at[i] == curves[i].size()) at[i++] = 0;
    if (i == curves.size()) return best;
  }
}
