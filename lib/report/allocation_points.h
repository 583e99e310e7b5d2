// Points of a model's size-quality plane computed from an allocation's curves (issue 14 item 5):
// the allocation itself, every weight at one nbits, and the Lagrangian frontier. x is bits per
// weight (8 * bytes / elements, over the allocated weights), y the total cost (the solver's).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "palettize/allocation.h"

namespace palettize {

struct CurvePoint {
  uint64_t bytes = 0;
  double cost = 0;
  double bpw = 0;
};

// The chosen candidates' totals. A weight with no valid `chosen` index contributes nothing.
CurvePoint ChosenPoint(const Allocation& a);

// Every weight at `nbits` (0: kept uncompressed); nullopt when some weight has no such candidate
// or there are no weights.
std::optional<CurvePoint> UniformPoint(const Allocation& a, int nbits);

// The allocations a Lagrangian sweep reaches: for each lambda >= 0 every weight takes the vertex
// of its lower convex hull (bytes, cost) minimising cost + lambda * bytes. Ascending bytes,
// descending cost, starting at every weight's smallest candidate (the cheapest among
// equal bytes). Each point is optimal for its own byte count: no allocation of at most its bytes
// has a lower total cost. One point per hull edge of every weight, plus the first: O(n log n).
std::vector<CurvePoint> LagrangianFrontier(const Allocation& a);

}  // namespace palettize
