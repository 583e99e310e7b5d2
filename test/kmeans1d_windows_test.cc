// The windowed exact 1-D k-means (lib/cluster/kmeans1d_windows.cc) against the full DP: the same
// optimal cost on random and adversarial inputs, the same clustering where the optimum is unique,
// with its sizes set small so that the relaxed levels run (and prune) on small problems.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "cluster/kmeans1d.h"
#include "cluster/kmeans1d_windows.h"

namespace palettize::detail {
extern std::atomic<bool> kmeans1d_windows;
extern std::atomic<bool> kmeans1d_vector_scans;
}  // namespace palettize::detail

using namespace palettize;

namespace {

// Direct weighted SSE of a clustering given by its starts (long double, two passes per cluster).
long double Cost(const std::vector<double>& x, const std::vector<double>& w,
                 const std::vector<size_t>& starts) {
  long double total = 0;
  for (size_t j = 0; j < starts.size(); ++j) {
    const size_t b = starts[j], e = j + 1 < starts.size() ? starts[j + 1] : x.size();
    long double sw = 0, swx = 0;
    for (size_t i = b; i < e; ++i) sw += w[i], swx += (long double)w[i] * x[i];
    const long double mean = swx / sw;
    for (size_t i = b; i < e; ++i) total += w[i] * (x[i] - mean) * (x[i] - mean);
  }
  return total;
}

// The full DP's clustering (the windowed path off).
Clustering1D FullDp(const std::vector<double>& x, const std::vector<double>& w, size_t k) {
  detail::kmeans1d_windows = false;
  Clustering1D c = OptimalKMeans1D(x.data(), w.data(), x.size(), k);
  detail::kmeans1d_windows = true;
  return c;
}

struct Input {
  std::vector<double> x, w;
};

// Strictly ascending values of one of several shapes, with weights.
Input Make(std::mt19937_64& rng, size_t n, int shape) {
  std::uniform_real_distribution<double> u(0, 1);
  std::student_t_distribution<double> t(4.0);
  std::set<double> vals;
  while (vals.size() < n) {
    switch (shape) {
      case 0: vals.insert(double(float(0.02 * t(rng)))); break;                                // fp32 weights
      case 1: vals.insert(std::pow(10.0, -8 + 16 * u(rng)) * (u(rng) < 0.5 ? -1 : 1)); break;  // 1e-8..1e8
      case 2: vals.insert(double(vals.size())); break;  // an even grid: many equal-cost optima
      default: vals.insert(u(rng) < 0.5 ? u(rng) : 1e6 + u(rng)); break;  // two far clumps
    }
  }
  Input in{{vals.begin(), vals.end()}, std::vector<double>(n)};
  for (double& wi : in.w)
    wi = shape == 2 ? 1.0 : shape == 1 ? std::pow(10.0, -6 + 12 * u(rng)) : 1 + double(rng() % 4);
  return in;
}

}  // namespace

TEST_CASE("windowed k-means: the full DP's optimum, through relaxed levels, on random and adversarial inputs",
          "[kmeans1d]") {
  std::mt19937_64 rng(7);
  int relaxed_runs = 0;
  for (int shape = 0; shape < 4; ++shape) {
    for (size_t n : {50, 700, 5000}) {
      for (size_t k : {2, 3, 7, 16, 64}) {
        if (k >= n) continue;
        const Input in = Make(rng, n, shape);
        const Clustering1D full = FullDp(in.x, in.w, k);
        // exact_rows n / 4: every problem runs at least one relaxed level first; level_rows small
        // so that units hold many values and the bound has a real gap to overcome.
        std::vector<size_t> starts;
        const bool ok = detail::WindowedKMeans1D(in.x.data(), in.w.data(), n, k, &starts, {n / 4, 16 * n});
        INFO("shape " << shape << " n " << n << " k " << k);
        // Float32-like weights must take the windowed path; the others may give up (an even grid
        // has many optima for the windows to hold, two far clumps costs too coarse to prune).
        if (shape == 0 && n >= 700) REQUIRE(ok);
        if (!ok) continue;
        ++relaxed_runs;
        REQUIRE(starts.size() == k);
        REQUIRE(starts[0] == 0);
        for (size_t j = 1; j < k; ++j) REQUIRE(starts[j] > starts[j - 1]);
        REQUIRE(starts.back() < n);
        const long double want = Cost(in.x, in.w, full.starts), got = Cost(in.x, in.w, starts);
        // Both DPs evaluate costs in double about the weighted mean, to a few ulps of each
        // cluster's sum of w (x - mean)^2: two clumps 1e6 apart leave that much room between
        // optima, well-spread values none.
        const long double spread = Cost(in.x, in.w, {0});
        REQUIRE(std::fabs(double(got - want)) <= 1e-12 * double(want) + 1e-13 * double(spread));
        // Float32-like weights have a unique optimum, resolved in double: the same clustering.
        // (Over 16 decades a value moved between clusters can change the cost by less than an
        // ulp of it: either clustering is optimal to double precision.)
        if (shape == 0) REQUIRE(starts == full.starts);
      }
    }
  }
  REQUIRE(relaxed_runs >= 35);
}

TEST_CASE("windowed k-means: k close to n, and exact_rows large enough to skip the relaxation",
          "[kmeans1d]") {
  std::mt19937_64 rng(11);
  const Input in = Make(rng, 300, 0);
  for (size_t k : {2, 150, 298, 299}) {
    for (size_t exact_rows : {size_t(75), size_t(1) << 30}) {
      std::vector<size_t> starts;
      if (!detail::WindowedKMeans1D(in.x.data(), in.w.data(), 300, k, &starts, {exact_rows, 1 << 12})) {
        REQUIRE(exact_rows == 75);  // only a relaxed level may give up
        continue;
      }
      INFO("k " << k << " exact_rows " << exact_rows);
      REQUIRE(starts == FullDp(in.x, in.w, k).starts);
    }
  }
  std::vector<size_t> starts;
  REQUIRE_FALSE(detail::WindowedKMeans1D(in.x.data(), in.w.data(), 300, 1, &starts));
  REQUIRE_FALSE(detail::WindowedKMeans1D(in.x.data(), in.w.data(), 300, 300, &starts));
  REQUIRE(starts.empty());
}

TEST_CASE("windowed k-means: OptimalKMeans1D takes it for 2^18+ values, with the full DP's result",
          "[kmeans1d]") {
  std::mt19937_64 rng(3);
  std::student_t_distribution<double> t(4.0);
  std::vector<float> raw(400000);
  for (float& v : raw) v = float(0.02 * t(rng));
  std::sort(raw.begin(), raw.end());
  std::vector<double> x, w;
  for (float v : raw) {
    if (!x.empty() && x.back() == double(v))
      w.back() += 1;
    else
      x.push_back(v), w.push_back(1);
  }
  REQUIRE(x.size() >= (size_t(1) << 18));
  for (size_t k : {4, 16}) {
    std::vector<size_t> starts;
    REQUIRE(detail::WindowedKMeans1D(x.data(), w.data(), x.size(), k, &starts));
    const Clustering1D full = FullDp(x, w, k);
    REQUIRE(starts == full.starts);
    const Clustering1D windowed = OptimalKMeans1D(x.data(), w.data(), x.size(), k);
    REQUIRE(windowed.starts == full.starts);
    REQUIRE(windowed.sse == full.sse);
    REQUIRE(windowed.centroids == full.centroids);
  }
}

TEST_CASE("windowed k-means: the AVX2 scans give the scalar scans' clustering", "[kmeans1d]") {
  // Every shape, sizes that leave partial vectors at the ends of the scans, and small level and
  // exact sizes so that both the relaxed levels and the exact stage scan.
  std::mt19937_64 rng(5);
  int compared = 0;
  for (int shape = 0; shape < 4; ++shape) {
    for (size_t n : {size_t(301), size_t(1030), size_t(4099)}) {
      const Input in = Make(rng, n, shape);
      for (size_t k : {size_t(3), size_t(16), size_t(61)}) {
        std::vector<size_t> vec, scalar;
        const bool ok_vec = detail::WindowedKMeans1D(in.x.data(), in.w.data(), n, k, &vec, {n / 4, 16 * n});
        detail::kmeans1d_vector_scans = false;
        const bool ok_scalar =
            detail::WindowedKMeans1D(in.x.data(), in.w.data(), n, k, &scalar, {n / 4, 16 * n});
        detail::kmeans1d_vector_scans = true;
        INFO("shape " << shape << " n " << n << " k " << k);
        REQUIRE(ok_vec == ok_scalar);
        REQUIRE(vec == scalar);
        compared += ok_vec;
      }
    }
  }
  REQUIRE(compared >= 20);  // 23 of 36: some give up (the even grid, the far clumps)
}
