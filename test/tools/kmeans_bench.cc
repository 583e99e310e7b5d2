// Times exact 1-D k-means on the problems the compress path gives it: the distinct float16 values
// (with counts) of groups of Student-t(4) x 0.02 weights, as the benchmark models hold. Prints the
// mean and the minimum time per solve over the repetitions, and the summed SSE (a checksum: any
// exact solver gives the same).
//
//   kmeans_bench ELEMENTS K [REPS]      e.g. kmeans_bench 12288 16 40  (85M, 4-bit g16 groups)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <vector>

#include "cluster/kmeans1d.h"
#include "util/half.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: kmeans_bench ELEMENTS K [REPS]\n");
    return 1;
  }
  const size_t elements = std::strtoull(argv[1], nullptr, 10);
  const size_t k = std::strtoull(argv[2], nullptr, 10);
  const int reps = argc > 3 ? std::atoi(argv[3]) : 20;
  if (elements == 0 || k == 0 || reps <= 0) {
    std::fprintf(stderr, "kmeans_bench: ELEMENTS, K and REPS must be positive\n");
    return 1;
  }
  std::mt19937_64 rng(42);
  std::student_t_distribution<double> t(4.0);
  double total = 0, best = 1e300, sse = 0;
  size_t distinct = 0;
  for (int r = 0; r < reps; ++r) {
    std::map<double, double> hist;
    for (size_t i = 0; i < elements; ++i) hist[palettize::RoundToHalf(0.02 * t(rng))] += 1;
    std::vector<double> values, counts;
    for (const auto& [v, c] : hist) values.push_back(v), counts.push_back(c);
    // One untimed solve warms the caches and the solver's reused buffers.
    palettize::OptimalKMeans1D(values.data(), counts.data(), values.size(), k);
    constexpr int kInner = 5;
    const auto t0 = std::chrono::steady_clock::now();
    palettize::Clustering1D c;
    for (int q = 0; q < kInner; ++q)
      c = palettize::OptimalKMeans1D(values.data(), counts.data(), values.size(), k);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / kInner;
    total += s;
    best = std::min(best, s);
    sse += c.sse;
    distinct += values.size();
  }
  std::printf(
      "elements %zu, k %zu: %zu distinct values on average; %.3f ms per solve (min %.3f); sse sum %.10g\n",
      elements, k, distinct / size_t(reps), 1e3 * total / reps, 1e3 * best, sse);
  return 0;
}
