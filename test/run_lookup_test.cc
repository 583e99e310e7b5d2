// RunLookup (GroupIndices' branch-free run search) against the search it replaced: the last run
// start at or below the value by std::upper_bound over the starts as doubles, for float and
// double elements, on runs of every count around powers of two, unordered indices, both zeros,
// subnormals, the extremes and values between and equal to run starts.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <random>
#include <vector>

#include "palettizer/run_lookup.h"

using namespace palettize;

namespace {

// The reference: the runs' first values as doubles, and upper_bound among all but the first.
uint8_t Reference(const std::vector<double>& values, const std::vector<uint8_t>& nearest, double x) {
  std::vector<double> first;
  std::vector<uint8_t> index;
  for (size_t v = 0; v < values.size(); ++v)
    if (v == 0 || nearest[v] != nearest[v - 1]) first.push_back(values[v]), index.push_back(nearest[v]);
  const size_t r = size_t(std::upper_bound(first.begin() + 1, first.end(), x) - first.begin()) - 1;
  return index[r];
}

template <typename F>
void Check(const std::vector<double>& values, const std::vector<uint8_t>& nearest, const std::vector<F>& xs) {
  const RunLookup<F> runs(values, nearest);
  for (F x : xs)
    if (runs(x) != Reference(values, nearest, double(x)))
      FAIL("value " << double(x) << ": " << int(runs(x)) << " against "
                    << int(Reference(values, nearest, x)));
}

}  // namespace

TEST_CASE("run lookup equals upper_bound over the run starts", "[distinct]") {
  std::mt19937_64 rng(3);
  // Sorted distinct float values with the hard cases: both zeros (merged, as -0), subnormals,
  // consecutive floats, the extremes.
  std::vector<float> pool = {-FLT_MAX, -1.0f, -1e-45f, -0.0f, 1e-45f, 2e-45f, 1e-38f, 0.5f, FLT_MAX};
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 400; ++i) pool.push_back(u(rng));
  float f = 0.25f;
  for (int i = 0; i < 40; ++i) pool.push_back(f = std::nextafter(f, 1.0f));
  std::sort(pool.begin(), pool.end());
  pool.erase(std::unique(pool.begin(), pool.end()), pool.end());  // -0 == +0: one stays
  const std::vector<double> values(pool.begin(), pool.end());
  // Queries: every value, +0 and -0, and floats just beside every value.
  std::vector<float> xs(pool);
  xs.push_back(0.0f), xs.push_back(-0.0f);
  for (float x : pool) {
    if (x > -FLT_MAX) xs.push_back(std::nextafter(x, -FLT_MAX));
    if (x < FLT_MAX) xs.push_back(std::nextafter(x, FLT_MAX));
  }
  const std::vector<double> xd(xs.begin(), xs.end());
  for (size_t runs : {size_t(1), size_t(2), size_t(3), size_t(15), size_t(16), size_t(17), size_t(255),
                      size_t(256), values.size()}) {
    INFO("runs " << runs);
    // Ascending indices in `runs` runs of random lengths, then the same with the indices shuffled
    // (runs need not be ordered) and with neighbours equal in places (fewer runs).
    std::vector<size_t> cuts(runs - 1);
    for (size_t& c : cuts) c = 1 + rng() % (values.size() - 1);
    std::sort(cuts.begin(), cuts.end());
    std::vector<uint8_t> nearest(values.size());
    for (size_t v = 0; v < values.size(); ++v)
      nearest[v] = uint8_t(std::upper_bound(cuts.begin(), cuts.end(), v) - cuts.begin());
    Check(values, nearest, xs);
    Check(values, nearest, xd);
    std::vector<uint8_t> shuffled(nearest);
    for (uint8_t& n : shuffled) n = uint8_t((n * 37 + 11) % 256);
    Check(values, shuffled, xs);
    Check(values, shuffled, xd);
  }
  // A single value.
  Check(std::vector<double>{0.0}, std::vector<uint8_t>{7}, std::vector<float>{-1.0f, -0.0f, 0.0f, 1.0f});
}
