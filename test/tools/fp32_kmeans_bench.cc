// Times (wall and CPU: the machine may be shared) exact 1-D k-means on the distinct float32 values of N
// Student-t(4) x 0.02 weights (as an fp32 tensor per tensor gives it), through the windowed path and, with
// --full, the full DP too, and checks that both give the same clustering.
//
//   fp32_kmeans_bench ELEMENTS K [--full]      e.g. fp32_kmeans_bench 11720448 256
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "cluster/kmeans1d.h"

namespace palettize::detail {
extern std::atomic<bool> kmeans1d_windows;
}  // namespace palettize::detail

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fp32_kmeans_bench ELEMENTS K [--full]\n");
    return 1;
  }
  const size_t elements = std::strtoull(argv[1], nullptr, 10);
  const size_t k = std::strtoull(argv[2], nullptr, 10);
  const bool full = argc > 3 && std::strcmp(argv[3], "--full") == 0;
  if (elements == 0 || k == 0) {
    std::fprintf(stderr, "fp32_kmeans_bench: ELEMENTS and K must be positive\n");
    return 1;
  }
  std::mt19937_64 rng(42);
  std::student_t_distribution<double> t(4.0);
  std::vector<float> raw(elements);
  for (float& v : raw) v = float(0.02 * t(rng));
  std::sort(raw.begin(), raw.end());
  std::vector<double> values, counts;
  for (float v : raw) {
    if (!values.empty() && values.back() == double(v))
      counts.back() += 1;
    else
      values.push_back(v), counts.push_back(1);
  }
  std::vector<float>().swap(raw);
  auto run = [&](bool windows) {
    palettize::detail::kmeans1d_windows = windows;
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    palettize::Clustering1D c = palettize::OptimalKMeans1D(values.data(), counts.data(), values.size(), k);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = double(std::clock() - c0) / CLOCKS_PER_SEC;
    std::printf("%s: %zu distinct values, k %zu: %.3f s wall, %.3f s CPU, sse %.17g\n",
                windows ? "windowed" : "full DP", values.size(), k, s, cpu, c.sse);
    return c;
  };
  const palettize::Clustering1D w = run(true);
  if (full) {
    const palettize::Clustering1D f = run(false);
    std::printf("same clustering: %s\n", w.starts == f.starts ? "yes" : "NO");
    if (w.starts != f.starts) return 2;
  }
  return 0;
}
