// The machinery under vector k-means (kmeans_vector.h): greedy k-means++ seeding and Lloyd
// iterations with Hamerly's bounds, on weighted points.
//
// Distances are compared in float (coordinates and centroids rounded once), which is what lets the
// inner loops run four or eight centroids at a time; means, errors and every sum that decides a
// result are in double, in a fixed order. No reduction depends on vector width or thread count,
// and there is no FMA contraction on the baseline target, so a seed gives bit-identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize {

// Points as VectorLloyd reads them, held elsewhere: count x dim coordinates and their weights
// (nullptr: every weight 1, as for a weight's own vectors).
struct PointsView {
  const double* coords = nullptr;
  const double* weights = nullptr;
  size_t count = 0, dim = 0;
  const double* Point(size_t i) const { return coords + i * dim; }
  double weight(size_t i) const { return weights ? weights[i] : 1.0; }
};

// Distinct points with their weights (counts, or summed sensitivities), all weights > 0.
struct WeightedPoints {
  size_t count = 0, dim = 0;
  std::vector<double> coords;  // count x dim
  std::vector<double> weights;
  const double* Point(size_t i) const { return &coords[i * dim]; }
  PointsView View() const { return {coords.data(), weights.data(), count, dim}; }
};

// Splitmix64 with a 53-bit double: our own, because <random> distributions differ between
// standard libraries.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double NextDouble() { return double(Next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)

 private:
  uint64_t state_;
};

struct LloydRun {
  std::vector<double> centroids;  // k x dim: the weighted means of `labels`' clusters
  std::vector<uint32_t> labels;   // per point; nearest up to float rounding of the bounds
  double weighted_sse = 0;        // sum_i w_i ||p_i - c(p_i)||^2 for these labels and centroids
  int iterations = 0;
};

// The nearest and the second nearest of the centroids in `ct` to float point x: ct holds them
// transposed (ct[t * kp + c]), kp a multiple of kNearestLanes, padded with FLT_MAX. *best is the
// nearest's index (the earliest on ties); *best_d2 and *second_d2 the two squared distances, in
// float. The kernel for points of `dim` coordinates, built for AVX2 where the processor has it.
constexpr size_t kNearestLanes = 8;
using NearestTwoFn = void (*)(const float* x, const float* ct, size_t kp, size_t dim, uint32_t* best,
                              float* best_d2, float* second_d2);
NearestTwoFn NearestTwoFor(size_t dim);

class VectorLloyd {
 public:
  // k <= pts.count (so that no cluster needs to stay empty). The points must outlive this.
  VectorLloyd(const PointsView& pts, size_t k);
  VectorLloyd(const WeightedPoints& pts, size_t k) : VectorLloyd(pts.View(), k) {}

  // Greedy k-means++: each step draws `trials` candidates (with probability proportional to
  // weight x squared distance to the chosen ones) and keeps the one leaving the least potential;
  // trials = 0 means 2 + ln k, as the k-means++ paper and scikit-learn use.
  std::vector<double> Seed(uint64_t seed, size_t trials = 0) const;

  // Lloyd from `centroids` (k x dim) until no label changes, the error improves by at most
  // tol x itself in an iteration, or max_iterations updates. An empty cluster takes over the point
  // farthest from its centroid among clusters of two or more points.
  LloydRun Iterate(std::vector<double> centroids, int max_iterations, double tol) const;

  // Iterate from each of `starts` (in parallel) and the run of least error, the earliest on ties:
  // the same for any thread count. starts is not empty.
  LloydRun IterateBest(std::vector<std::vector<double>> starts, int max_iterations, double tol) const;

 private:
  PointsView pts_;
  size_t k_;
  std::vector<float> fcoords_;  // count x dim, the float copy distances are computed on
};

}  // namespace palettize
