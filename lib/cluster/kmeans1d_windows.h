// Exact weighted 1-D k-means for many distinct values (fp32 and f64 tensors per tensor), in time
// and memory that grow with the windows where the optimal boundaries can lie rather than with n*k.
//
// Each level replaces the values by a few units (runs of values) and solves a relaxed problem whose
// optimum, minus a known constant, is a lower bound on the true optimum; every unit where a given
// boundary would make that bound exceed a known clustering's cost (an upper bound) cannot hold
// that boundary in any optimal clustering. Levels shrink these windows until an exact DP restricted
// to them is cheap: its optimum is the optimum of the whole problem (see kmeans1d_windows.cc for
// the relaxation and the proof).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace palettize::detail {

// The summed window sizes at which the exact restricted DP runs, and the rows a relaxed level may
// hold; 0 picks each from k. Tests set them small to reach the relaxed levels on small problems.
struct WindowSizes {
  size_t exact_rows = 0, level_rows = 0;
};

// `x` (the values) strictly ascending and finite, `w` (their weights) positive, 2 <= k < n. On success fills
// `starts` (k ascending cluster starts, starts[0] = 0) with an optimal clustering and returns true;
// returns false (starts untouched) when the windows do not narrow enough for the restricted DP to
// be cheaper than the full one, and the caller solves the full problem.
bool WindowedKMeans1D(const double* x, const double* w, size_t n, size_t k, std::vector<size_t>* starts,
                      WindowSizes sizes = {});
// The same on float values with whole-number weights (a float32 tensor's distinct values and their
// counts): every sum is the one of the same numbers as doubles, so the result is the same.
bool WindowedKMeans1D(const float* x, const uint32_t* w, size_t n, size_t k, std::vector<size_t>* starts,
                      WindowSizes sizes = {});

}  // namespace palettize::detail
