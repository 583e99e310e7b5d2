// The allocations a Lagrangian sweep visits (--min-output-psnr's search space): start with each
// curve at its smallest efficient option, then take the curves' lower-convex-hull segments most
// efficient first (the most cost saved per byte added), one at a time. Every allocation on the path
// minimises cost + lambda x bytes for some lambda >= 0, so each is an exact optimum of the
// multiple-choice knapsack at its own bytes (the budget SolveKnapsack would be given), and the path
// ascends in bytes and descends in total cost.
#pragma once

#include <vector>

#include "alloc/knapsack.h"

namespace palettize {

// The path: per step, the chosen option of each curve (indices into the caller's options). Ties
// between segments of equal efficiency go in curve order, so the path is deterministic. Empty when
// a curve is empty.
std::vector<std::vector<int>> LagrangianPath(const std::vector<std::vector<KnapsackOption>>& curves);

}  // namespace palettize
