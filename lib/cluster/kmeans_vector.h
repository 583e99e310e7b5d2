// k-means for vectors (vector palettization, cluster_dim > 1): k-means++ seeding, several
// restarts, Lloyd iterations to convergence, the best restart kept. Deterministic for a seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize {

struct VectorClustering {
  std::vector<double> centroids;  // k' x dim, row-major, k' = min(k, number of distinct points)
  std::vector<uint32_t> labels;   // n: index of each point's nearest centroid
  double sse = 0;
};

struct VectorKMeansOptions {
  uint64_t seed = 0;
  int restarts = 4;
  int max_iterations = 300;
};

// `points` is n x dim row-major. n >= 1, dim >= 1, k >= 1.
VectorClustering VectorKMeans(const double* points, size_t n, size_t dim, size_t k,
                              const VectorKMeansOptions& options);

}  // namespace palettize
