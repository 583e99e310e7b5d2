#include "alloc/lagrange_path.h"

#include <algorithm>
#include <tuple>

namespace palettize {

std::vector<std::vector<int>> LagrangianPath(const std::vector<std::vector<KnapsackOption>>& curves) {
  std::vector<std::vector<int>> hull_options(curves.size());  // per curve, its hull vertices' options
  struct Segment {
    double efficiency;  // cost saved per byte added, positive, falling along one curve's hull
    size_t curve, step;
  };
  std::vector<Segment> segments;
  for (size_t i = 0; i < curves.size(); ++i) {
    if (curves[i].empty()) return {};
    const std::vector<int> front = EfficientOptions(curves[i]);
    for (size_t k : LowerHull(curves[i], front)) hull_options[i].push_back(front[k]);
    const std::vector<int>& h = hull_options[i];
    for (size_t s = 1; s < h.size(); ++s) {
      const KnapsackOption &a = curves[i][size_t(h[s - 1])], &b = curves[i][size_t(h[s])];
      segments.push_back({(a.cost - b.cost) / double(b.bytes - a.bytes), i, s});
    }
  }
  // A convex hull's segments fall in efficiency, so this order keeps each curve's in sequence
  // (equal efficiencies: by curve, then step).
  std::sort(segments.begin(), segments.end(), [](const Segment& x, const Segment& y) {
    return std::make_tuple(-x.efficiency, x.curve, x.step) < std::make_tuple(-y.efficiency, y.curve, y.step);
  });
  std::vector<std::vector<int>> path;
  std::vector<int> at(curves.size());
  for (size_t i = 0; i < curves.size(); ++i) at[i] = hull_options[i][0];
  path.push_back(at);
  for (const Segment& s : segments) {
    at[s.curve] = hull_options[s.curve][s.step];
    path.push_back(at);
  }
  return path;
}

}  // namespace palettize
