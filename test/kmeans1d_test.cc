// Exact 1-D k-means: checked against brute force, the unweighted expansion, Lloyd and random
// partitions, and the O(n)-memory recovery path against the table path.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "cluster/kmeans1d.h"
#include "util/half.h"

namespace palettize::detail {
// Defined in lib/cluster/kmeans1d.cc; lets the test force the Hirschberg-style path.
Clustering1D OptimalKMeans1DWithTableLimit(const double* values, const double* weights, size_t n, size_t k,
                                           size_t max_table_entries);
extern std::atomic<bool> kmeans1d_vector_scans;
}  // namespace palettize::detail

using namespace palettize;

namespace {

// Direct weighted SSE of one group (long double, two passes).
long double GroupCost(const std::vector<double>& x, const std::vector<double>& w,
                      const std::vector<size_t>& idx) {
  long double sw = 0, swx = 0;
  for (size_t i : idx) {
    sw += w[i];
    swx += (long double)w[i] * x[i];
  }
  if (sw == 0) return 0;
  const long double mean = swx / sw;
  long double c = 0;
  for (size_t i : idx) c += w[i] * (x[i] - mean) * (x[i] - mean);
  return c;
}

long double PartitionCost(const std::vector<double>& x, const std::vector<double>& w,
                          const std::vector<size_t>& starts) {
  long double total = 0;
  for (size_t j = 0; j < starts.size(); ++j) {
    const size_t e = j + 1 < starts.size() ? starts[j + 1] : x.size();
    std::vector<size_t> idx;
    for (size_t i = starts[j]; i < e; ++i) idx.push_back(i);
    total += GroupCost(x, w, idx);
  }
  return total;
}

// Best over every way to cut the sorted values into exactly k runs.
long double BruteContiguous(const std::vector<double>& x, const std::vector<double>& w, size_t k) {
  const size_t n = x.size();
  long double best = std::numeric_limits<long double>::infinity();
  std::vector<size_t> starts{0};
  std::function<void(size_t)> rec = [&](size_t next) {
    if (starts.size() == k) {
      best = std::min(best, PartitionCost(x, w, starts));
      return;
    }
    for (size_t s = next; s + (k - starts.size()) <= n; ++s) {
      starts.push_back(s);
      rec(s + 1);
      starts.pop_back();
    }
  };
  rec(1);
  return best;
}

// Best over all k^n labelings (empty clusters allowed), no contiguity assumed.
long double BruteAllAssignments(const std::vector<double>& x, const std::vector<double>& w, size_t k) {
  const size_t n = x.size();
  size_t total = 1;
  for (size_t i = 0; i < n; ++i) total *= k;
  long double best = std::numeric_limits<long double>::infinity();
  for (size_t code = 0; code < total; ++code) {
    std::vector<std::vector<size_t>> groups(k);
    size_t c = code;
    for (size_t i = 0; i < n; ++i, c /= k) groups[c % k].push_back(i);
    long double cost = 0;
    for (auto& g : groups) cost += GroupCost(x, w, g);
    best = std::min(best, cost);
  }
  return best;
}

// Strictly ascending values from several regimes, and weights to match.
void RandomInput(std::mt19937_64& rng, size_t n, int regime, std::vector<double>& x, std::vector<double>& w) {
  std::uniform_real_distribution<double> u(0, 1);
  std::set<double> vals;
  while (vals.size() < n) {
    double v;
    switch (regime % 3) {
      case 0: v = u(rng) * 2 - 1; break;
      case 1: v = std::pow(10.0, -8 + 12 * u(rng)) * (u(rng) < 0.3 ? -1 : 1); break;  // 1e-8..1e4
      default: v = 1000 + std::floor(u(rng) * 64) / 256; break;  // offset cluster, fp16-like grid
    }
    vals.insert(v);
  }
  x.assign(vals.begin(), vals.end());
  w.resize(n);
  for (auto& wi : w) {
    switch (regime / 3) {
      case 0: wi = 0.01 + u(rng) * 10; break;        // real sensitivities
      case 1: wi = u(rng) < 0.7 ? 1.0 : 1e6; break;  // duplicate-heavy counts
      default: wi = double(1 + rng() % 5); break;    // small integer counts
    }
  }
}

void CheckShape(const Clustering1D& r, size_t n, size_t k) {
  const size_t kk = std::min(n, k);
  REQUIRE(r.starts.size() == kk);
  REQUIRE(r.centroids.size() == kk);
  REQUIRE(r.starts[0] == 0);
  for (size_t j = 1; j < kk; ++j) {
    REQUIRE(r.starts[j] > r.starts[j - 1]);
    REQUIRE(r.centroids[j] > r.centroids[j - 1]);
  }
  REQUIRE(r.starts.back() < n);
  REQUIRE(r.sse >= 0);
}

bool Close(long double a, long double b, long double scale) {
  return std::fabs(double(a - b)) <= 1e-10 * double(std::max(std::fabs(b), scale)) + 1e-300;
}

}  // namespace

TEST_CASE("1-D k-means matches brute force over contiguous partitions", "[kmeans1d]") {
  std::mt19937_64 rng(12345);
  int checked = 0;
  for (int trial = 0; trial < 600; ++trial) {
    const size_t n = 1 + rng() % 12;
    const size_t k = 1 + rng() % 5;
    std::vector<double> x, w;
    RandomInput(rng, n, trial % 9, x, w);
    const Clustering1D r = OptimalKMeans1D(x.data(), w.data(), n, k);
    CheckShape(r, n, k);
    const size_t kk = std::min(n, k);
    const long double brute = BruteContiguous(x, w, kk);
    // Scale for the tolerance: a tiny optimum is only meaningful relative to the data's spread.
    const long double spread = GroupCost(x, w, [&] {
      std::vector<size_t> all(n);
      for (size_t i = 0; i < n; ++i) all[i] = i;
      return all;
    }());
    // The reference itself rounds (a one-value group's mean need not be exactly the value), so
    // allow an absolute floor far below anything a wrong partition could cost.
    long double magnitude = 0;
    for (size_t i = 0; i < n; ++i) magnitude += w[i] * x[i] * x[i];
    const long double scale = std::max(1e-6L * spread, 1e-24L * magnitude);
    INFO("trial " << trial << " n=" << n << " k=" << k);
    REQUIRE(Close(r.sse, brute, scale));
    REQUIRE(Close(PartitionCost(x, w, r.starts), r.sse, scale));
    if (kk == n) REQUIRE(r.sse == 0);
    ++checked;
  }
  CHECK(checked == 600);
}

TEST_CASE("1-D k-means matches brute force over all assignments", "[kmeans1d]") {
  std::mt19937_64 rng(777);
  for (int trial = 0; trial < 150; ++trial) {
    const size_t n = 1 + rng() % 7;
    const size_t k = 1 + rng() % 3;
    std::vector<double> x, w;
    RandomInput(rng, n, trial % 9, x, w);
    const Clustering1D r = OptimalKMeans1D(x.data(), w.data(), n, k);
    CheckShape(r, n, k);
    const long double brute = BruteAllAssignments(x, w, k);
    long double magnitude = 0;
    for (size_t i = 0; i < n; ++i) magnitude += w[i] * x[i] * x[i];
    INFO("trial " << trial << " n=" << n << " k=" << k);
    REQUIRE(Close(r.sse, brute, 1e-24L * magnitude));
  }
}

TEST_CASE("1-D k-means: integer weights equal repeated values", "[kmeans1d]") {
  std::mt19937_64 rng(99);
  for (int trial = 0; trial < 40; ++trial) {
    const size_t n = 3 + rng() % 20;
    const size_t k = 1 + rng() % 6;
    std::vector<double> x, w;
    RandomInput(rng, n, 6 + trial % 3, x, w);  // integer counts
    std::vector<double> expanded;
    for (size_t i = 0; i < n; ++i)
      for (int c = 0; c < int(w[i]); ++c) expanded.push_back(x[i]);
    // Textbook O(k m^2) DP on the expanded (unweighted, repeated) list, costs by direct summation.
    const size_t m = expanded.size(), kk = std::min(k, n);
    auto cost = [&](size_t a, size_t b) {
      long double s = 0;
      for (size_t i = a; i < b; ++i) s += expanded[i];
      const long double mean = s / (b - a);
      long double c = 0;
      for (size_t i = a; i < b; ++i) c += (expanded[i] - mean) * (expanded[i] - mean);
      return c;
    };
    const long double inf = std::numeric_limits<long double>::infinity();
    std::vector<std::vector<long double>> d(kk + 1, std::vector<long double>(m + 1, inf));
    std::vector<std::vector<size_t>> arg(kk + 1, std::vector<size_t>(m + 1, 0));
    d[0][0] = 0;
    for (size_t j = 1; j <= kk; ++j)
      for (size_t p = j; p <= m; ++p)
        for (size_t q = j - 1; q < p; ++q)
          if (d[j - 1][q] + cost(q, p) < d[j][p]) {
            d[j][p] = d[j - 1][q] + cost(q, p);
            arg[j][p] = q;
          }
    std::vector<double> expected_centroids;
    for (size_t j = kk, p = m; j >= 1; --j) {
      const size_t q = arg[j][p];
      long double s = 0;
      for (size_t i = q; i < p; ++i) s += expanded[i];
      expected_centroids.push_back(double(s / (p - q)));
      p = q;
    }
    std::reverse(expected_centroids.begin(), expected_centroids.end());

    const Clustering1D r = OptimalKMeans1D(x.data(), w.data(), n, k);
    long double magnitude = 0;
    for (double v : expanded) magnitude += (long double)v * v;
    INFO("trial " << trial);
    REQUIRE(Close(r.sse, d[kk][m], 1e-24L * magnitude));
    REQUIRE(r.centroids.size() == expected_centroids.size());
    for (size_t j = 0; j < kk; ++j)
      CHECK(std::fabs(r.centroids[j] - expected_centroids[j]) <=
            1e-12 * std::max(1.0, std::fabs(expected_centroids[j])));
  }
}

TEST_CASE("1-D k-means on 5000 values beats Lloyd and random partitions", "[kmeans1d]") {
  std::mt19937_64 rng(2024);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::set<double> vals;
  while (vals.size() < 5000) vals.insert(normal(rng) * (u(rng) < 0.2 ? 4 : 1));
  std::vector<double> x(vals.begin(), vals.end()), w(x.size());
  for (auto& wi : w) wi = 0.1 + u(rng) * 3;
  const size_t n = x.size(), k = 16;

  const Clustering1D r = OptimalKMeans1D(x.data(), w.data(), n, k);
  CheckShape(r, n, k);
  REQUIRE(Close(PartitionCost(x, w, r.starts), r.sse, 0));

  // An optimum is a Lloyd fixed point: every value is nearest to its own cluster's centroid.
  for (size_t j = 0; j < k; ++j) {
    const size_t e = j + 1 < k ? r.starts[j + 1] : n;
    for (size_t i = r.starts[j]; i < e; ++i) {
      const double own = std::fabs(x[i] - r.centroids[j]);
      if (j > 0) REQUIRE(own <= std::fabs(x[i] - r.centroids[j - 1]) + 1e-12);
      if (j + 1 < k) REQUIRE(own <= std::fabs(x[i] - r.centroids[j + 1]) + 1e-12);
    }
  }

  const double tol = 1e-12 * r.sse;
  // Weighted Lloyd from perturbed optimal centroids can only reach another local optimum.
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<double> c = r.centroids;
    for (auto& ci : c) ci += normal(rng) * 0.3;
    std::sort(c.begin(), c.end());
    double sse = 0;
    for (int it = 0; it < 200; ++it) {
      std::vector<long double> sw(k, 0), swx(k, 0);
      sse = 0;
      for (size_t i = 0; i < n; ++i) {
        size_t best = 0;
        for (size_t j = 1; j < k; ++j)
          if (std::fabs(x[i] - c[j]) < std::fabs(x[i] - c[best])) best = j;
        sw[best] += w[i];
        swx[best] += w[i] * x[i];
        sse += w[i] * (x[i] - c[best]) * (x[i] - c[best]);
      }
      for (size_t j = 0; j < k; ++j)
        if (sw[j] > 0) c[j] = double(swx[j] / sw[j]);
    }
    CHECK(r.sse <= sse + tol);
  }
  // Random contiguous partitions.
  for (int trial = 0; trial < 20; ++trial) {
    std::set<size_t> cuts{0};
    while (cuts.size() < k) cuts.insert(1 + rng() % (n - 1));
    const std::vector<size_t> starts(cuts.begin(), cuts.end());
    CHECK(r.sse <= double(PartitionCost(x, w, starts)) + tol);
  }
  // More clusters never cost more, and strictly less while k < n here.
  double previous = std::numeric_limits<double>::infinity();
  for (size_t kk = 1; kk <= 24; ++kk) {
    const double sse = OptimalKMeans1D(x.data(), w.data(), n, kk).sse;
    CHECK(sse < previous);
    previous = sse;
  }
}

TEST_CASE("1-D k-means O(n)-memory path equals the argmin-table path", "[kmeans1d]") {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0, 1);
  for (size_t trial = 0; trial < 12; ++trial) {
    std::set<double> vals;
    const size_t n = 50 + rng() % 3000;
    while (vals.size() < n) vals.insert(normal(rng));
    std::vector<double> x(vals.begin(), vals.end()), w(n);
    for (auto& wi : w) wi = double(1 + rng() % 100);
    const size_t k = 2 + rng() % 40;
    const Clustering1D table = OptimalKMeans1D(x.data(), w.data(), n, k);
    // Limit 0 forces the middle-layer split at every level of the recursion.
    const Clustering1D lean = detail::OptimalKMeans1DWithTableLimit(x.data(), w.data(), n, k, 0);
    INFO("n=" << n << " k=" << k);
    CheckShape(lean, n, k);
    REQUIRE(Close(lean.sse, table.sse, 0));
    CHECK(lean.starts == table.starts);
  }
}

namespace {

// Distinct float16 values of a group of Student-t(4) weights (the benchmark's heavy tails), with
// their counts: the shape of every per_grouped_channel problem.
void HalfGroup(std::mt19937_64& rng, size_t elements, double scale, std::vector<double>& x,
               std::vector<double>& w) {
  std::student_t_distribution<double> t(4.0);
  std::map<double, double> hist;
  for (size_t i = 0; i < elements; ++i) hist[double(RoundToHalf(scale * t(rng)))] += 1;
  x.clear();
  w.clear();
  for (const auto& [v, c] : hist) x.push_back(v), w.push_back(c);
}

// A float16 weight group (half) or one of RandomInput's regimes (up to `most` values; regime 2
// draws from a 64-value grid).
void MixedInput(std::mt19937_64& rng, int trial, bool half, size_t most, std::vector<double>& x,
                std::vector<double>& w) {
  if (half) {
    HalfGroup(rng, 200 + rng() % 30000, 0.02, x, w);
  } else {
    RandomInput(rng, trial % 3 == 2 ? 60 : 10 + rng() % most, trial % 9, x, w);
  }
}

}  // namespace

TEST_CASE("1-D k-means pruned two-ended DP equals the full DP", "[kmeans1d]") {
  // The default path prunes rows by a Lloyd bound and meets in the middle; the O(n)-memory path
  // (table limit 0) runs every row of every layer. Same optimum on every input.
  std::mt19937_64 rng(77);
  int checked = 0;
  for (int trial = 0; trial < 60; ++trial) {
    std::vector<double> x, w;
    MixedInput(rng, trial, trial % 3 == 0, 1500, x, w);
    const size_t n = x.size();
    for (const size_t k : {size_t(2), size_t(3), size_t(16), size_t(64), size_t(256), n - 1}) {
      if (k < 2 || k >= n) continue;
      const Clustering1D pruned = OptimalKMeans1D(x.data(), w.data(), n, k);
      const Clustering1D full = detail::OptimalKMeans1DWithTableLimit(x.data(), w.data(), n, k, 0);
      INFO("trial " << trial << " n=" << n << " k=" << k);
      CheckShape(pruned, n, k);
      // Both are double-precision DPs: they agree to 1e-10, or, where values span many decades
      // with weights up to 1e6 (regime 1), to the DP's own rounding of the data's total spread.
      long double sw = 0, swx = 0, spread = 0;
      for (size_t i = 0; i < n; ++i) sw += w[i], swx += w[i] * (long double)x[i];
      for (size_t i = 0; i < n; ++i) spread += w[i] * (x[i] - swx / sw) * (x[i] - swx / sw);
      INFO("pruned " << pruned.sse << " full " << full.sse << " spread " << double(spread));
      REQUIRE(Close(pruned.sse, full.sse, 1e-6L * spread));
      ++checked;
    }
  }
  CHECK(checked > 200);
}

TEST_CASE("1-D k-means vector scans give the scalar scan's answer bit for bit", "[kmeans1d]") {
  std::mt19937_64 rng(91);
  for (int trial = 0; trial < 30; ++trial) {
    std::vector<double> x, w;
    MixedInput(rng, trial, trial % 2 == 0, 3000, x, w);
    const size_t n = x.size();
    const size_t k = std::min<size_t>(n, size_t(2) << (rng() % 8));
    for (const size_t limit : {size_t(1) << 24, size_t(0)}) {
      detail::kmeans1d_vector_scans = true;
      const Clustering1D vec = detail::OptimalKMeans1DWithTableLimit(x.data(), w.data(), n, k, limit);
      detail::kmeans1d_vector_scans = false;
      const Clustering1D scalar = detail::OptimalKMeans1DWithTableLimit(x.data(), w.data(), n, k, limit);
      detail::kmeans1d_vector_scans = true;
      INFO("trial " << trial << " n=" << n << " k=" << k << " limit=" << limit);
      REQUIRE(vec.starts == scalar.starts);
      REQUIRE(vec.centroids == scalar.centroids);
      REQUIRE(vec.sse == scalar.sse);
    }
  }
}

TEST_CASE("1-D k-means edge cases", "[kmeans1d]") {
  const double x[] = {-3, -1, 0.5, 2, 10};
  const double w[] = {1, 2, 3, 4, 5};
  const Clustering1D one = OptimalKMeans1D(x, w, 5, 1);
  REQUIRE(one.centroids.size() == 1);
  CHECK(one.centroids[0] == Approx((-3 - 2 + 1.5 + 8 + 50) / 15.0).epsilon(1e-15));
  const Clustering1D many = OptimalKMeans1D(x, w, 5, 9);
  REQUIRE(many.centroids == std::vector<double>(x, x + 5));
  CHECK(many.sse == 0);
  const double single[] = {42.0}, sw[] = {0.5};
  const Clustering1D s = OptimalKMeans1D(single, sw, 1, 4);
  REQUIRE(s.centroids == std::vector<double>{42.0});
  CHECK(s.sse == 0);
  // A tight cluster far from the origin next to a wide one: the shifted, compensated sums keep
  // its tiny cost accurate.
  const double far[] = {1e4, 1e4 + 1e-6, 1e4 + 2e-6, 2e4, 2e4 + 1};
  const double fw[] = {1, 1, 1, 1, 1};
  const Clustering1D f = OptimalKMeans1D(far, fw, 5, 2);
  REQUIRE(f.starts == std::vector<size_t>{0, 3});
  CHECK(f.sse == Approx(2e-12 + 0.5).epsilon(1e-12));
}
