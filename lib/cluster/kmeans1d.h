// Exact (optimal) weighted 1-D k-means.
//
// Given n distinct values x_0 < x_1 < ... < x_{n-1} with weights w_i > 0 (counts, or counts times
// sensitivities), finds k' = min(k, n) clusters minimising sum_i w_i (x_i - c(x_i))^2. Optimal
// clusters are contiguous runs of the sorted values, so the problem is a dynamic program over
// prefix sums of w, w*x, w*x^2 (../shared/clustering-notes.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize {

struct Clustering1D {
  std::vector<double> centroids;  // k' ascending weighted means
  std::vector<size_t> starts;     // k' ascending: cluster j holds values [starts[j], starts[j+1])
  double sse = 0;                 // the optimal weighted sum of squared errors
};

// `values` must be strictly ascending and finite, `weights` positive; n >= 1, k >= 1.
Clustering1D OptimalKMeans1D(const double* values, const double* weights, size_t n, size_t k);

// The same on float values with whole-number weights (a float32 tensor's distinct values and their
// counts, 4 bytes each where doubles take 8): the result of the same numbers as doubles.
Clustering1D OptimalKMeans1D(const float* values, const uint32_t* counts, size_t n, size_t k);

}  // namespace palettize
