// The pruned DP's lower bounds on the cost still to come (cluster/kmeans1d_remainder.h): checked
// against the exact penalized optimum of every suffix and prefix, and the pruned DP with them
// against the pruned DP without them, bit for bit.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "cluster/kmeans1d.h"
#include "cluster/kmeans1d_remainder.h"
#include "util/half.h"

namespace palettize::detail {
// lib/cluster/kmeans1d.cc
extern std::atomic<bool> kmeans1d_remainder;
extern std::atomic<bool> kmeans1d_unit_bound;
uint64_t& KMeans1DRows();
}  // namespace palettize::detail

using palettize::Clustering1D;
using palettize::OptimalKMeans1D;
using palettize::RoundToHalf;
namespace detail = palettize::detail;

namespace {

// Distinct float16 values of `elements` Student-t(4) x 0.02 weights, with their counts.
void HalfGroup(std::mt19937_64& rng, size_t elements, std::vector<double>& x, std::vector<double>& w) {
  std::student_t_distribution<double> t(4.0);
  std::map<double, double> hist;
  for (size_t i = 0; i < elements; ++i) hist[double(RoundToHalf(0.02 * t(rng)))] += 1;
  x.clear(), w.clear();
  for (const auto& [v, c] : hist) x.push_back(v), w.push_back(c);
}

// n distinct values: uniform, spread over twelve decades with both signs, or far from zero on a
// fine grid; weights from 0.01 to 10, or counts.
void OtherInput(std::mt19937_64& rng, size_t n, int regime, std::vector<double>& x, std::vector<double>& w) {
  std::uniform_real_distribution<double> u(0, 1);
  std::set<double> values;
  while (values.size() < n) {
    switch (regime % 3) {
      case 0: values.insert(u(rng) * 2 - 1); break;
      case 1: values.insert(std::pow(10.0, -8 + 12 * u(rng)) * (u(rng) < 0.3 ? -1 : 1)); break;
      default: values.insert(1000 + std::floor(u(rng) * 4096) / 65536); break;
    }
  }
  x.assign(values.begin(), values.end());
  w.resize(n);
  for (auto& v : w) v = regime % 2 ? double(1 + rng() % 7) : 0.01 + 10 * u(rng);
}

// Exact G over every suffix: suffix[p] = min over clusterings of values [p, n) of cost + lambda x
// clusters (0 at p = n), and the same over every prefix [0, P), by O(n^2) DPs over incremental
// cluster costs. In double (long double is software on aarch64, where the tests also run, under
// qemu): a few ulps of each cost, far below the slack the bounds are given.
void ExactPenalized(const std::vector<double>& x, const std::vector<double>& w, double lambda,
                    std::vector<double>* suffix, std::vector<double>* prefix) {
  const size_t n = x.size();
  // The cost of [a, b) for every b > a, from sums of the values less x[a] (exact on these grids,
  // and shifted into the cluster, so the sums cancel little).
  auto costs_from = [&](size_t a, std::vector<double>& out) {
    out.assign(n + 1, 0);
    double sw = 0, s1 = 0, s2 = 0;
    for (size_t b = a; b < n; ++b) {
      const double d = x[b] - x[a];
      sw += w[b], s1 += w[b] * d, s2 += w[b] * d * d;
      out[b + 1] = std::max(0.0, s2 - s1 * s1 / sw);
    }
  };
  suffix->assign(n + 1, 0);
  prefix->assign(n + 1, std::numeric_limits<double>::infinity());
  (*prefix)[0] = 0;
  std::vector<double> c;
  for (size_t a = n; a-- > 0;) {
    costs_from(a, c);
    double best = std::numeric_limits<double>::infinity();
    for (size_t b = a + 1; b <= n; ++b) best = std::min(best, c[b] + lambda + (*suffix)[b]);
    (*suffix)[a] = best;
  }
  for (size_t a = 0; a < n; ++a) {
    costs_from(a, c);
    for (size_t b = a + 1; b <= n; ++b) (*prefix)[b] = std::min((*prefix)[b], (*prefix)[a] + c[b] + lambda);
  }
}

}  // namespace

TEST_CASE("remainder bounds: never above the exact penalized cost of any suffix or prefix", "[kmeans1d]") {
  std::mt19937_64 rng(2026);
  int tight = 0, cases = 0;
  for (int trial = 0; trial < 24; ++trial) {
    std::vector<double> x, w;
    if (trial % 4 == 0)
      HalfGroup(rng, 600 + rng() % 1200, x, w);
    else
      OtherInput(rng, 30 + rng() % 400, trial, x, w);
    const size_t n = x.size();
    long double sw = 0, swx = 0, total = 0;
    for (size_t i = 0; i < n; ++i) sw += w[i], swx += w[i] * (long double)x[i];
    for (size_t i = 0; i < n; ++i) total += w[i] * (x[i] - swx / sw) * (x[i] - swx / sw);
    for (const size_t k : {size_t(2), size_t(4), size_t(16)}) {
      if (k >= n) continue;
      const Clustering1D opt = OptimalKMeans1D(x.data(), w.data(), n, k);
      // Lambda near the marginal cost of a cluster (as the DP uses it), and far on either side.
      for (const double scale : {0.01, 1.0, 30.0}) {
        const double lambda = scale * 2 * opt.sse / double(k);
        if (!(lambda > 0)) continue;
        // The slack the pruned DP gives them: its bound's own, 1e-9 of the optimum and 1e-12 of the
        // cost of all values as one cluster (costs cancel in the shifted frame to a few ulps of it).
        const double slack = 1e-9 * opt.sse + 1e-12 * double(total);
        std::vector<double> suffix, mirrored;
        detail::RemainderBounds(x.data(), w.data(), n, opt.starts, lambda, slack, &suffix, &mirrored);
        std::vector<double> gs, gp;
        ExactPenalized(x, w, lambda, &gs, &gp);
        INFO("trial " << trial << " n=" << n << " k=" << k << " lambda=" << lambda);
        REQUIRE(suffix.size() == n + 1);
        REQUIRE(mirrored.size() == n + 1);
        CHECK(suffix[n] == 0);
        CHECK(mirrored[n] == 0);
        for (size_t p = 0; p <= n; ++p) {
          INFO("p=" << p << " bound " << suffix[p] << " exact " << gs[p] << " | mirrored " << mirrored[n - p]
                    << " exact prefix " << gp[p]);
          REQUIRE(suffix[p] <= gs[p]);
          REQUIRE(mirrored[n - p] <= gp[p]);
          if (p < n) REQUIRE(suffix[p] >= suffix[p + 1]);
          if (p > 0) REQUIRE(mirrored[p - 1] >= mirrored[p]);
        }
        // Near the marginal cost on float16 groups the bound is close: it is what prunes.
        if (scale == 1.0 && trial % 4 == 0 && k == 16) {
          ++cases;
          tight += suffix[0] >= 0.97 * gs[0] && mirrored[0] >= 0.97 * gp[n];
        }
      }
    }
  }
  CHECK(cases == 6);
  CHECK(tight == cases);
}

TEST_CASE("pruned DP: the remainder bounds and the units' bound leave the clustering unchanged, bit for bit",
          "[kmeans1d]") {
  std::mt19937_64 rng(714);
  int checked = 0;
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<double> x, w;
    if (trial % 2 == 0) {
      // The shapes of real groups: 16 x 768 (85M, g16), 16 x 4096 (7B-shaped), and small ones.
      const size_t sizes[] = {12288, 65536, 1000, 3000};
      HalfGroup(rng, sizes[(trial / 2) % 4], x, w);
    } else {
      OtherInput(rng, 20 + rng() % 2000, trial, x, w);
    }
    const size_t n = x.size();
    for (const size_t k : {size_t(2), size_t(3), size_t(4), size_t(8), size_t(16), size_t(64), size_t(256)}) {
      if (k >= n) continue;
      const Clustering1D with = OptimalKMeans1D(x.data(), w.data(), n, k);
      detail::kmeans1d_unit_bound = false;
      const Clustering1D lloyd = OptimalKMeans1D(x.data(), w.data(), n, k);
      detail::kmeans1d_remainder = false;
      const Clustering1D without = OptimalKMeans1D(x.data(), w.data(), n, k);
      detail::kmeans1d_remainder = true;
      detail::kmeans1d_unit_bound = true;
      INFO("trial " << trial << " n=" << n << " k=" << k);
      for (const Clustering1D* c : {&with, &lloyd}) {
        REQUIRE(c->starts == without.starts);
        REQUIRE(c->centroids == without.centroids);
        REQUIRE(c->sse == without.sse);
      }
      ++checked;
    }
  }
  CHECK(checked > 200);
}

TEST_CASE("pruned DP: the units' optimum as the upper bound computes fewer rows than Lloyd's", "[kmeans1d]") {
  // Lloyd's cost is up to a few percent over the optimum on float16 groups; the best clustering
  // with boundaries at unit ends, refined, is within about 0.03%, and rows pass by that margin.
  std::mt19937_64 rng(2026);
  for (const auto& [elements, k] : {std::pair<size_t, size_t>{12288, 16}, {65536, 16}, {12288, 64}}) {
    uint64_t rows[2] = {0, 0};
    for (int group = 0; group < 4; ++group) {
      std::vector<double> x, w;
      HalfGroup(rng, elements, x, w);
      Clustering1D c[2];
      for (int units = 0; units < 2; ++units) {
        detail::kmeans1d_unit_bound = units == 1;
        const uint64_t before = detail::KMeans1DRows();
        c[units] = OptimalKMeans1D(x.data(), w.data(), x.size(), k);
        rows[units] += detail::KMeans1DRows() - before;
      }
      detail::kmeans1d_unit_bound = true;
      REQUIRE(c[0].starts == c[1].starts);
    }
    INFO(elements << " elements, k = " << k << ": rows with Lloyd's bound " << rows[0] << ", with the units' "
                  << rows[1]);
    // Measured: 0.58, 0.80 and 0.34 of the rows (counting the units' own DP).
    CHECK(double(rows[1]) < 0.9 * double(rows[0]));
  }
}
