// ValueIndex (AddWeights' lookup of each element's distinct value) against std::lower_bound over
// the values, scalar and batched, for float and double: values spread over many binades, a dense
// run of consecutive numbers (one bucket holding many values, sub-buckets of one value each for
// float; for double all in one sub-bucket, searched by bisection), both zeros, subnormals, the
// extremes, and queries equal to and between the values.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "palettizer/value_index.h"

using namespace palettize;

namespace {

template <typename F>
void Check(bool negative_zero) {
  std::mt19937_64 rng(11);
  std::student_t_distribution<double> t(4.0);
  std::vector<F> pool;
  for (int i = 0; i < 300000; ++i) pool.push_back(F(0.02 * t(rng)));
  F f = F(0.03);
  for (int i = 0; i < 50000; ++i) pool.push_back(f = std::nextafter(f, F(1)));
  const F tiny = std::numeric_limits<F>::denorm_min(), big = std::numeric_limits<F>::max();
  for (F x : {F(0), tiny, -tiny, F(3) * tiny, std::numeric_limits<F>::min(), big, -big, F(1), F(-1)})
    pool.push_back(x);
  std::sort(pool.begin(), pool.end());
  pool.erase(std::unique(pool.begin(), pool.end()), pool.end());
  std::vector<double> values(pool.begin(), pool.end());
  // The merged zero is -0 where the group held one (it sorts first).
  for (double& v : values)
    if (v == 0) v = negative_zero ? -0.0 : 0.0;
  const ValueIndex<F> index(values);
  std::vector<F> xs(pool);
  xs.push_back(F(0)), xs.push_back(-F(0));
  for (F x : pool) {
    if (x > -big) xs.push_back(std::nextafter(x, -big));
    if (x < big) xs.push_back(std::nextafter(x, big));
  }
  std::shuffle(xs.begin(), xs.end(), rng);
  std::vector<size_t> batched(xs.size());
  index.Find(xs.data(), xs.size(), batched.data());
  for (size_t i = 0; i < xs.size(); ++i) {
    const size_t want =
        size_t(std::lower_bound(values.begin(), values.end(), double(xs[i])) - values.begin());
    if (index.Find(xs[i]) != want || batched[i] != want)
      FAIL("value " << double(xs[i]) << ": " << index.Find(xs[i]) << " and " << batched[i] << " against "
                    << want);
  }
}

}  // namespace

TEST_CASE("value index equals lower_bound over the distinct values", "[distinct]") {
  for (bool negative_zero : {false, true}) {
    INFO("merged zero negative " << negative_zero);
    Check<float>(negative_zero);
    Check<double>(negative_zero);
  }
}
