// k-means for vectors (vector palettization, cluster_dim > 1): greedy k-means++ seeding, several
// restarts (on a sample when the points are many), bounded Lloyd iterations until the error stops
// improving, the best restart kept. Deterministic for a seed, for any thread count.
//
// Weighted (sensitivity-weighted k-means, SKM): each point i has a weight s_i >= 0 and the
// objective is sum_i s_i ||p_i - c(p_i)||^2. For vector palettization s_i is the sum of the
// sensitivities of the vector's elements, as coremltools' SKMPalettizer forms it; with one weight
// per vector, the nearest centroid is also the one of least weighted error, so labels stay
// nearest-centroid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize {

struct VectorClustering {
  std::vector<double> centroids;  // k' x dim, row-major, k' = min(k, number of distinct points)
  std::vector<uint32_t> labels;   // n: index of each point's nearest centroid
  double sse = 0;
  double weighted_sse = 0;  // sum_i s_i ||p_i - c(p_i)||^2 (with weights only)
};

struct VectorKMeansOptions {
  uint64_t seed = 0;
  int restarts = 4;  // seeded runs, in parallel; the best (then the lowest index) is kept
  int max_iterations = 300;
  // Lloyd stops once an iteration lowers the error by at most tol x the error (or no label
  // changes). 0: run to a fixed point (or max_iterations).
  double tol = 1e-4;
  // Whether to fill labels and sse (an exact nearest-centroid pass over every point); the
  // palettizer assigns final table entries itself and skips it.
  bool labels = true;
};

// `points` is n x dim row-major. n >= 1, dim >= 1, k >= 1.
VectorClustering VectorKMeans(const double* points, size_t n, size_t dim, size_t k,
                              const VectorKMeansOptions& options);

// The same minimising sum_i weights[i] ||p_i - c(p_i)||^2 (weights: n values, finite, >= 0).
//   - All weights equal (all zero included): exactly VectorKMeans(points, ...), whose clustering
//     is optimal for any common weight.
//   - Otherwise, points of weight 0 leave the problem (they take their nearest centroid), so
//     k' = min(k, distinct points of positive weight), and with k' = their count each is a centroid
//     (weighted error 0). Else the candidates are: the plain VectorKMeans result, that result
//     improved by weighted Lloyd iterations, and `restarts` runs of weighted k-means++ seeding and
//     weighted Lloyd; the one of least weighted error is kept (the earliest on ties). So the result
//     is never worse on the weighted objective than the plain clustering (up to the rounding of the
//     sums), at about twice its cost.
// Deterministic for a seed, like the plain one.
VectorClustering WeightedVectorKMeans(const double* points, const double* weights, size_t n, size_t dim,
                                      size_t k, const VectorKMeansOptions& options);

}  // namespace palettize
