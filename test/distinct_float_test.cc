// Float32 distinct values and indices on a group past 2^20 elements, where DistinctFloat radix-sorts
// and GroupIndices finds each element's run of equal nearest entries: the same values, counts and
// indices as a plain sort and a binary search over every distinct value; with sensitivities, the
// same weights as the general path's merge.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "mil/dtype.h"
#include "palettizer/distinct.h"
#include "palettizer/fast_path.h"
#include "safetensors/safetensors.h"
#include "sensitivity/sensitivity.h"
#include "test_util.h"

using namespace palettize;

namespace {

// The reference: the elements sorted by std::sort, equal values (-0 and +0 too) merged, counted.
void SortAndMerge(std::vector<float> w, std::vector<double>* values, std::vector<double>* counts) {
  std::sort(w.begin(), w.end());
  for (float x : w) {
    if (!values->empty() && values->back() == double(x))
      counts->back() += 1;
    else
      values->push_back(x), counts->push_back(1);
  }
}

}  // namespace

TEST_CASE("fp32 distinct values past 2^20 elements: radix sort and run lookup match sort and search",
          "[distinct]") {
  std::mt19937_64 rng(5);
  std::student_t_distribution<double> t(4.0);
  const uint64_t rows = 1100, cols = 1024;  // 1,126,400 elements
  std::vector<float> w(rows * cols);
  for (float& v : w) v = float(0.02 * t(rng));
  // Duplicates, both zeros, subnormals, and the extremes of the range.
  for (size_t i = 0; i < 5000; ++i) w[rng() % w.size()] = w[rng() % w.size()];
  w[3] = 0.0f, w[4] = -0.0f, w[5] = -0.0f, w[6] = 1e-45f, w[7] = -1e-45f;
  w[8] = 3.4e38f, w[9] = -3.4e38f;
  TensorShape shape;
  shape.mil_type = mil::DataType::FLOAT32;
  shape.dims = {rows, cols};
  shape.elements = rows * cols;
  shape.bits = 32;
  const ChannelLayout L(shape, 0);
  std::vector<float> buf;
  DistinctValues d;
  REQUIRE(DistinctFloat(w.data(), L, 0, rows, buf, &d));

  std::vector<double> values, counts;
  SortAndMerge(w, &values, &counts);
  REQUIRE(d.values == values);  // == on doubles: -0 and +0 are one value either way
  REQUIRE(d.counts == counts);

  // Indices of a 16-entry table against nearest[lower_bound(value)].
  std::vector<double> entries(16);
  for (size_t j = 0; j < 16; ++j) entries[j] = -0.1 + 0.2 * double(j) / 15;
  std::vector<uint8_t> nearest, indices(w.size());
  NearestSorted(d.values.data(), d.values.size(), entries.data(), 16, &nearest);
  GroupIndices(reinterpret_cast<const uint8_t*>(w.data()), mil::DataType::FLOAT32, L, rows, 0, d, nearest,
               indices.data());
  for (size_t e = 0; e < w.size(); ++e) {
    const size_t pos = size_t(std::lower_bound(values.begin(), values.end(), double(w[e])) - values.begin());
    if (indices[e] != nearest[pos]) FAIL("element " << e << " value " << w[e]);
  }
  // A non-finite value is still refused.
  w[10] = std::nanf("");
  REQUIRE_FALSE(DistinctFloat(w.data(), L, 0, rows, buf, &d));
}

TEST_CASE("fp32 radix sort: odd sizes and every alignment of the buckets' lines", "[distinct]") {
  // The sort's lines of 16 keys go to 64-byte aligned slots: sizes that put the second half of the
  // buffer and each bucket's first slot at every offset within a line.
  for (const size_t n : {size_t(1) << 20, (size_t(1) << 20) + 1, (size_t(1) << 20) + 7, size_t(1100003)}) {
    std::mt19937_64 rng(n);
    std::student_t_distribution<double> t(4.0);
    std::vector<float> w(n);
    for (float& v : w) v = float(0.02 * t(rng));
    for (size_t i = 0; i < 3000; ++i) w[rng() % n] = w[rng() % n];
    TensorShape shape;
    shape.mil_type = mil::DataType::FLOAT32;
    shape.dims = {n};
    shape.elements = n;
    shape.bits = 32;
    std::vector<float> buf;
    DistinctValues d;
    REQUIRE(DistinctFloat(w.data(), ChannelLayout(shape, 0), 0, n, buf, &d));
    std::vector<double> values, counts;
    SortAndMerge(w, &values, &counts);
    INFO("n = " << n);
    REQUIRE(d.values == values);
    REQUIRE(d.counts == counts);
  }
}

namespace {

// DistinctFloatWeighted on a [rows, cols] float32 weight w with F64 sensitivities s, one group.
bool DistinctWeighted(const std::vector<float>& w, const std::vector<double>& s, uint64_t rows, uint64_t cols,
                      DistinctValues* d) {
  SafeTensor st;
  const ElementWeights sens = F64Sensitivities(s, &st);
  TensorShape shape;
  shape.mil_type = mil::DataType::FLOAT32;
  shape.dims = {rows, cols};
  shape.elements = rows * cols;
  shape.bits = 32;
  std::vector<float> buf;
  std::vector<double> sbuf;
  std::vector<RepeatedElement> repeats;
  return DistinctFloatWeighted(w.data(), ChannelLayout(shape, 0), 0, rows, sens, buf, sbuf, repeats, d);
}

// The general path's merge of the same elements: the reference.
DistinctValues GeneralMerge(const std::vector<float>& w, const std::vector<double>& s) {
  std::vector<WeightedPoint> pts(w.size());
  for (size_t e = 0; e < w.size(); ++e) pts[e] = {double(w[e]), 1.0, s[e]};
  DistinctValues want;
  MergePoints(pts, true, &want);
  return want;
}

}  // namespace

TEST_CASE("weighted fp32 distinct values past 2^20 values: bucketed lookup matches the general path's merge",
          "[distinct]") {
  // Past a million distinct values DistinctFloatWeighted finds each element's value by bucket and
  // galloping search; its weights must be MergePoints' (sums in ascending sensitivity order).
  std::mt19937_64 rng(9);
  std::student_t_distribution<double> t(4.0);
  std::gamma_distribution<double> g(2.0, 1.0);
  const uint64_t rows = 1100, cols = 1024;
  std::vector<float> w(rows * cols);
  for (float& v : w) v = float(0.02 * t(rng));
  // Repeated values (their sensitivities summed), both zeros, a dense run of consecutive floats
  // (a bucket holding every float of its range), subnormals, and the extremes.
  for (size_t i = 0; i < 20000; ++i) w[rng() % w.size()] = w[rng() % w.size()];
  float f = 0.01f;
  for (size_t i = 100; i < 9000; ++i) w[i] = f = std::nextafter(f, 1.0f);
  w[3] = 0.0f, w[4] = -0.0f, w[5] = -0.0f, w[6] = 1e-45f, w[7] = -1e-45f;
  w[8] = 3.4e38f, w[9] = -3.4e38f;
  std::vector<double> s(w.size());
  for (double& v : s) v = g(rng);
  s[11] = 0;
  DistinctValues d;
  REQUIRE(DistinctWeighted(w, s, rows, cols, &d));
  REQUIRE(d.values.size() >= (size_t(1) << 20));  // the bucketed lookup ran

  const DistinctValues want = GeneralMerge(w, s);
  REQUIRE(d.values == want.values);
  REQUIRE(d.counts == want.counts);
  REQUIRE(d.weights == want.weights);
}

TEST_CASE("weighted fp32, every value distinct: counts not stored, weights as the general path's merge",
          "[distinct]") {
  std::mt19937_64 rng(13);
  std::gamma_distribution<double> g(2.0, 1.0);
  const uint64_t rows = 1100, cols = 1024;
  // Distinct by construction (integers times 2^-20, exact), -0 for the zero, shuffled.
  std::vector<float> w(rows * cols);
  for (size_t e = 0; e < w.size(); ++e) w[e] = std::ldexp(float(e) - 550000.0f, -20);
  w[550000] = -0.0f;
  std::shuffle(w.begin(), w.end(), rng);
  std::vector<double> s(w.size());
  for (double& v : s) v = g(rng);
  DistinctValues d;
  REQUIRE(DistinctWeighted(w, s, rows, cols, &d));
  REQUIRE(d.values.size() == w.size());
  REQUIRE(d.counts.empty());
  const DistinctValues want = GeneralMerge(w, s);
  REQUIRE(d.values == want.values);
  REQUIRE(d.weights == want.weights);
}
