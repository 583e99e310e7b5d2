// NearestSorted's sweep, four values at a time where the nearest entry stays, against the plain
// sweep; and GroupIndices' counting of run starts against the nearest entry of each element's
// value; on tables with equal entries, ties midway between entries, both zeros, subnormals and
// values so far outside the table that every distance rounds to the same double.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "mil/dtype.h"
#include "palettizer/distinct.h"
#include "palettizer/fast_path.h"

using namespace palettize;

namespace {

// The former NearestSorted: one forward sweep over the values.
std::vector<uint8_t> Sweep(const std::vector<double>& values, const std::vector<double>& entries) {
  const uint64_t K = entries.size();
  std::vector<uint8_t> idx(values.size());
  uint64_t j = 0;
  for (size_t v = 0; v < values.size(); ++v) {
    const double x = values[v];
    while (j + 1 < K && std::fabs(x - entries[j + 1]) <= std::fabs(x - entries[j])) ++j;
    uint64_t best = j;
    while (best > 0 && std::fabs(x - entries[best - 1]) <= std::fabs(x - entries[best])) --best;
    idx[v] = uint8_t(best);
  }
  return idx;
}

// Ascending entries: rounded to a coarse grid (so some are equal), with subnormals and zeros.
std::vector<double> Entries(std::mt19937_64& rng, uint64_t K, int kind) {
  std::normal_distribution<double> normal(0, 0.05);
  std::vector<double> e(K);
  for (double& x : e) x = kind == 0 ? double(float(normal(rng))) : std::round(normal(rng) * 200) / 200;
  if (kind == 2 && K > 3) e[0] = -1e-45, e[1] = 0.0, e[2] = 1e-45;
  std::sort(e.begin(), e.end());
  return e;
}

}  // namespace

TEST_CASE("NearestSorted four values at a time equals the sweep", "[nearest_sorted]") {
  std::mt19937_64 rng(7);
  std::student_t_distribution<double> t(3.0);
  for (uint64_t K : {2, 3, 16, 64, 256}) {
    for (int kind = 0; kind < 3; ++kind) {
      const std::vector<double> entries = Entries(rng, K, kind);
      std::vector<float> xs(200 * K + 1000);
      for (float& x : xs) x = float(0.05 * t(rng));
      // Every entry, every midpoint between neighbours (a tie), and their float neighbours.
      for (size_t j = 0; j + 1 < K; ++j) {
        const float mid = float((entries[j] + entries[j + 1]) / 2);
        for (float x : {float(entries[j]), mid, std::nextafter(mid, -1.0f), std::nextafter(mid, 1.0f)})
          xs.push_back(x);
      }
      for (float x : {0.0f, 1e-45f, -1e-45f, 3e38f, -3e38f}) xs.push_back(x);
      std::sort(xs.begin(), xs.end());
      std::vector<double> values;
      for (float x : xs)
        if (values.empty() || values.back() != double(x)) values.push_back(x);
      std::vector<uint8_t> got;
      NearestSorted(values.data(), values.size(), entries.data(), K, &got);
      INFO("K=" << K << " kind=" << kind << " values " << values.size());
      REQUIRE(got == Sweep(values, entries));
    }
  }
}

TEST_CASE("GroupIndices counts run starts: each element takes its value's nearest entry",
          "[nearest_sorted]") {
  std::mt19937_64 rng(9);
  std::student_t_distribution<double> t(4.0);
  for (uint64_t K : {4, 16, 32}) {
    for (int kind = 0; kind < 3; ++kind) {
      std::vector<float> w(20000 + 13);
      for (float& x : w) x = float(0.05 * t(rng));
      w[0] = 0.0f, w[1] = -0.0f, w[2] = 1e-45f, w[3] = -1e-45f;
      TensorShape shape;
      shape.mil_type = mil::DataType::FLOAT32;
      shape.dims = {w.size(), 1};
      shape.elements = w.size();
      shape.bits = 32;
      const ChannelLayout L(shape, 0);
      std::vector<float> buf;
      DistinctValues d;
      REQUIRE(DistinctFloat(w.data(), L, 0, w.size(), buf, &d));
      const std::vector<double> entries = Entries(rng, K, kind);
      std::vector<uint8_t> nearest, indices(w.size());
      NearestSorted(d.values.data(), d.values.size(), entries.data(), K, &nearest);
      GroupIndices(reinterpret_cast<const uint8_t*>(w.data()), mil::DataType::FLOAT32, L, w.size(), 0, d,
                   nearest, indices.data());
      INFO("K=" << K << " kind=" << kind);
      for (size_t e = 0; e < w.size(); ++e) {
        const size_t pos =
            size_t(std::lower_bound(d.values.begin(), d.values.end(), double(w[e])) - d.values.begin());
        if (indices[e] != nearest[pos]) FAIL("element " << e << " value " << w[e]);
      }
    }
  }
}
