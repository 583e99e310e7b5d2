// NearestVector: the pruned search returns exactly what trying every entry in index order does.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cluster/nearest_vector.h"

using namespace palettize;

namespace {

// Every entry in index order, ties to the lower index: the palettizer's former search.
uint32_t Exhaustive(const std::vector<double>& entries, size_t dim, const double* x, double* error) {
  uint32_t best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (size_t j = 0; j < entries.size() / dim; ++j) {
    double err = 0;
    for (size_t t = 0; t < dim; ++t) {
      const double d = x[t] - entries[j * dim + t];
      err += d * d;
    }
    if (err < best_err) best_err = err, best = uint32_t(j);
  }
  *error = best_err;
  return best;
}

}  // namespace

TEST_CASE("nearest vector equals the exhaustive search", "[nearest_vector]") {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0, 1);
  for (size_t dim : {2, 3, 4, 8}) {
    for (size_t k : {1, 2, 7, 16, 64, 65, 256}) {  // 64: the largest table tried in full
      std::vector<double> entries(k * dim);
      for (auto& e : entries) e = std::round(normal(rng) * 4) / 4;  // coarse: equal first coordinates
      if (k > 3) std::copy_n(&entries[0], dim, &entries[2 * dim]);  // a duplicate entry: a tie
      const NearestVector nearest(entries.data(), k, dim);
      std::vector<double> x(dim);
      for (int q = 0; q < 2000; ++q) {
        for (auto& v : x) v = q % 3 == 0 ? std::round(normal(rng) * 4) / 4 : normal(rng) * 1.5;
        if (q % 7 == 0) std::copy_n(&entries[(size_t(q) % k) * dim], dim, x.begin());  // on an entry
        double want_err, got_err;
        const uint32_t want = Exhaustive(entries, dim, x.data(), &want_err);
        const uint32_t got = nearest(x.data(), &got_err);
        INFO("dim=" << dim << " k=" << k << " q=" << q);
        REQUIRE(got == want);
        REQUIRE(got_err == want_err);
        REQUIRE(nearest(x.data()) == want);
      }
    }
  }
}

TEST_CASE("nearest vector: a batch of queries equals one query at a time", "[nearest_vector]") {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0, 1);
  for (size_t dim : {2, 3, 4, 8}) {
    for (size_t k : {1, 2, 5, 7, 16, 17, 64, 256}) {
      std::vector<double> entries(k * dim);
      for (auto& e : entries) e = std::round(normal(rng) * 4) / 4;    // coarse: many equal errors
      if (k > 6) std::copy_n(&entries[dim], dim, &entries[6 * dim]);  // a duplicate in another lane
      const NearestVector nearest(entries.data(), k, dim);
      const size_t m = 3000;
      std::vector<double> xs(m * dim);
      for (size_t q = 0; q < m; ++q) {
        for (size_t t = 0; t < dim; ++t)
          xs[q * dim + t] = q % 3 == 0 ? std::round(normal(rng) * 4) / 4 : normal(rng) * 1.5;
        // Midway between two entries (a tie of errors across lanes), or on an entry.
        if (q % 5 == 0 && k > 1)
          for (size_t t = 0; t < dim; ++t) xs[q * dim + t] = (entries[t] + entries[(k - 1) * dim + t]) / 2;
        if (q % 7 == 0) std::copy_n(&entries[(q % k) * dim], dim, &xs[q * dim]);
      }
      std::vector<uint32_t> got(m, UINT32_MAX), got_plain(m, UINT32_MAX);
      std::vector<double> got_err(m, -1);
      nearest.Many(xs.data(), m, got.data(), got_err.data());
      nearest.Many(xs.data(), m, got_plain.data());
      for (size_t q = 0; q < m; ++q) {
        double want_err, one_err = -1;
        INFO("dim=" << dim << " k=" << k << " q=" << q);
        const uint32_t want = Exhaustive(entries, dim, &xs[q * dim], &want_err);
        REQUIRE(got[q] == want);
        REQUIRE(got_err[q] == want_err);
        REQUIRE(got_plain[q] == want);
        REQUIRE(nearest(&xs[q * dim], &one_err) == want);
        REQUIRE(one_err == want_err);
      }
    }
  }
}

TEST_CASE("nearest vector: errors that overflow tie at infinity, to the lowest index", "[nearest_vector]") {
  for (size_t k : {3, 9, 100}) {  // tried in full, and searched
    const size_t dim = 3;
    std::vector<double> entries(k * dim);
    for (size_t j = 0; j < k; ++j)
      for (size_t t = 0; t < dim; ++t) entries[j * dim + t] = (j % 2 ? -1e200 : 1e200) * double(j + 1 + t);
    const NearestVector nearest(entries.data(), k, dim);
    const std::vector<double> xs = {0, 0, 0, 1, -2, 3};
    uint32_t got[2];
    double got_err[2];
    nearest.Many(xs.data(), 2, got, got_err);
    for (size_t q = 0; q < 2; ++q) {
      double want_err, one_err = -1;
      INFO("k=" << k << " q=" << q);
      REQUIRE(Exhaustive(entries, dim, &xs[q * dim], &want_err) == 0);
      REQUIRE(want_err == std::numeric_limits<double>::infinity());
      REQUIRE(got[q] == 0);
      REQUIRE(got_err[q] == want_err);
      REQUIRE(nearest(&xs[q * dim], &one_err) == 0);
      REQUIRE(one_err == want_err);
    }
  }
}
