#include "report/allocation_points.h"

#include <algorithm>

namespace palettize {

namespace {

uint64_t Elements(const Allocation& a) {
  uint64_t n = 0;
  for (const WeightAllocation& w : a.weights) n += w.elements;
  return n;
}

CurvePoint Point(uint64_t bytes, double cost, uint64_t elements) {
  return {bytes, cost, elements > 0 ? 8.0 * double(bytes) / double(elements) : 0.0};
}

// The lower convex hull of a weight's (bytes, cost) points, ascending bytes, strictly descending
// cost: the vertices a Lagrangian sweep can pick. Collinear middle points are dropped, so the
// slopes between consecutive vertices strictly decrease in magnitude.
std::vector<const AllocationCandidate*> LowerHull(const WeightAllocation& w) {
  std::vector<const AllocationCandidate*> sorted;
  for (const AllocationCandidate& c : w.candidates) sorted.push_back(&c);
  std::sort(sorted.begin(), sorted.end(), [](const AllocationCandidate* x, const AllocationCandidate* y) {
    return x->bytes != y->bytes ? x->bytes < y->bytes : x->cost < y->cost;
  });
  std::vector<const AllocationCandidate*> hull;
  for (const AllocationCandidate* p : sorted) {
    if (!hull.empty() && (p->bytes == hull.back()->bytes || p->cost >= hull.back()->cost)) continue;
    while (hull.size() >= 2) {
      const AllocationCandidate* a = hull[hull.size() - 2];
      const AllocationCandidate* b = hull.back();
      // b is kept only when strictly below the line from a to p.
      const double lhs = (b->cost - a->cost) * double(p->bytes - a->bytes);
      const double rhs = (p->cost - a->cost) * double(b->bytes - a->bytes);
      if (lhs < rhs) break;
      hull.pop_back();
    }
    hull.push_back(p);
  }
  return hull;
}

}  // namespace

CurvePoint ChosenPoint(const Allocation& a) {
  uint64_t bytes = 0;
  double cost = 0;
  for (const WeightAllocation& w : a.weights) {
    if (w.chosen < 0 || size_t(w.chosen) >= w.candidates.size()) continue;
    bytes += w.candidates[size_t(w.chosen)].bytes;
    cost += w.candidates[size_t(w.chosen)].cost;
  }
  return Point(bytes, cost, Elements(a));
}

std::optional<CurvePoint> UniformPoint(const Allocation& a, int nbits) {
  if (a.weights.empty()) return std::nullopt;
  uint64_t bytes = 0;
  double cost = 0;
  for (const WeightAllocation& w : a.weights) {
    auto it = std::find_if(w.candidates.begin(), w.candidates.end(),
                           [&](const AllocationCandidate& c) { return c.nbits == nbits; });
    if (it == w.candidates.end()) return std::nullopt;
    bytes += it->bytes;
    cost += it->cost;
  }
  return Point(bytes, cost, Elements(a));
}

std::vector<CurvePoint> LagrangianFrontier(const Allocation& a) {
  struct Step {
    double rate;  // cost saved per byte added
    size_t weight;
    uint64_t bytes;
    double cost;
  };
  std::vector<Step> steps;
  uint64_t bytes = 0;
  long double cost = 0;  // long: thousands of steps subtract from it
  for (size_t i = 0; i < a.weights.size(); ++i) {
    const std::vector<const AllocationCandidate*> hull = LowerHull(a.weights[i]);
    if (hull.empty()) continue;
    bytes += hull[0]->bytes;
    cost += hull[0]->cost;
    for (size_t k = 1; k < hull.size(); ++k) {
      const uint64_t db = hull[k]->bytes - hull[k - 1]->bytes;
      const double dc = hull[k - 1]->cost - hull[k]->cost;
      steps.push_back({dc / double(db), i, db, dc});
    }
  }
  // Within a weight the rates strictly decrease, so a stable sort keeps each weight's edges in
  // hull order: every prefix of the steps is a vertex per weight.
  std::stable_sort(steps.begin(), steps.end(), [](const Step& x, const Step& y) { return x.rate > y.rate; });
  const uint64_t elements = Elements(a);
  std::vector<CurvePoint> out;
  if (a.weights.empty()) return out;
  out.push_back(Point(bytes, double(cost), elements));
  for (const Step& s : steps) {
    bytes += s.bytes;
    cost -= s.cost;
    out.push_back(Point(bytes, std::max(0.0, double(cost)), elements));
  }
  return out;
}

}  // namespace palettize
