// Float64 weights through the fast scalar path (radix-sorted distinct values, the windowed exact
// DP, run lookup): every output bit for bit the general path's (PalettizeWeight, the reference
// exact solver over every element), on random tensors with ties, subnormals, both zeros and
// duplicates, with and without sensitivities; and the sweep's widths the same.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "MIL.pb.h"
#include "mil/tensor_data.h"
#include "palettizer/distinct.h"
#include "palettizer/fast_path.h"
#include "palettizer/sweep.h"
#include "palettizer/weight_palettizer.h"
#include "safetensors/safetensors.h"
#include "sensitivity/sensitivity.h"
#include "test_util.h"

using namespace palettize;
using MT = CoreML::Specification::MILSpec::DataType;

namespace {

TensorShape F64Shape(std::vector<uint64_t> dims) {
  TensorShape s = MakeShape(std::move(dims), MT::FLOAT64);
  s.bits = 64;
  return s;
}

WeightPlan Plan(PalettizeMode mode, int nbits, uint64_t group_size, int axis = 0) {
  return PalettizePlan(mode, nbits, group_size, axis);
}

// Student-t values with the hard cases mixed in: repeated values, both zeros, subnormals and
// values whose squared errors underflow (1e-200), a run of consecutive doubles, and an even grid
// (a DP with many equal-cost clusterings).
std::vector<double> HardValues(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<double> t(4.0);
  std::vector<double> v(n);
  for (double& x : v) x = 0.02 * t(rng);
  for (size_t i = 0; i < n / 50; ++i) v[rng() % n] = v[rng() % n];
  for (size_t i = 0; i < n / 200; ++i) v[rng() % n] = (rng() & 1) ? 0.0 : -0.0;
  for (size_t i = 0; i < n / 200; ++i) v[rng() % n] = double(rng() % 9) * 4.9e-324 * ((rng() & 1) ? 1 : -1);
  for (size_t i = 0; i < n / 200; ++i) v[rng() % n] = double(rng() % 5) * 1e-200;
  for (size_t i = 0; i < n / 100; ++i) v[rng() % n] = 0.01 * double(int(rng() % 21) - 10);
  double f = 0.03;
  for (size_t i = 0; i < n / 100; ++i) v[rng() % n] = f = std::nextafter(f, 1.0);
  v[0] = -0.0, v[1] = 0.0;
  return v;
}

struct Sens {
  std::vector<double> s;
  SafeTensor st;
  ElementWeights w;
  explicit Sens(size_t n, uint64_t seed) : s(n) {
    std::mt19937_64 rng(seed);
    std::gamma_distribution<double> g(2.0, 1.0);
    for (double& x : s) x = g(rng);
    for (size_t i = 0; i < n / 100; ++i) s[rng() % n] = 0;  // zero-sensitivity elements leave the DP
    w = F64Sensitivities(s, &st);
  }
};

void RequireSame(const PalettizedWeight& fast, const PalettizedWeight& general) {
  REQUIRE(fast.nbits == general.nbits);
  REQUIRE(fast.tables == general.tables);
  REQUIRE(fast.lut == general.lut);
  REQUIRE(fast.lut_scale == general.lut_scale);
  REQUIRE(fast.lut_offset == general.lut_offset);
  REQUIRE(fast.indices == general.indices);
  REQUIRE(fast.decoded.size() == general.decoded.size());
  for (size_t e = 0; e < fast.decoded.size(); ++e)
    if (!(fast.decoded[e] == general.decoded[e] &&
          std::signbit(fast.decoded[e]) == std::signbit(general.decoded[e])))
      FAIL("decoded element " << e << ": " << fast.decoded[e] << " against " << general.decoded[e]);
  // The totals bit for bit too: they reach the report and the bit allocation.
  REQUIRE(fast.sse == general.sse);
  REQUIRE(fast.signal == general.signal);
  REQUIRE(fast.max_abs_error == general.max_abs_error);
  REQUIRE(fast.weighted_sse == general.weighted_sse);
  REQUIRE(fast.snr_db == general.snr_db);
}

const std::vector<int> kAll = {1, 2, 3, 4, 6, 8};

}  // namespace

TEST_CASE("float64 fast path equals the general exact path on hard random tensors", "[palettizer]") {
  uint64_t seed = 1;
  for (auto mode : {PalettizeMode::kKMeans, PalettizeMode::kUniform}) {
    for (auto lut : {LutDType::kFloat, LutDType::kInt8}) {
      for (uint64_t group : {uint64_t(4), uint64_t(64)}) {
        for (bool weighted : {false, true}) {
          for (int nbits : {2, 4, 6}) {
            const TensorShape s = F64Shape({64, 40, 3});
            const std::vector<double> v = HardValues(s.elements, ++seed);
            Sens sens(s.elements, seed);
            WeightPlan plan = Plan(mode, nbits, group, 0);
            plan.config.lut_dtype = lut;
            const std::string raw = EncodeElements(v, MT::FLOAT64);
            REQUIRE(TakesFastPath(reinterpret_cast<const uint8_t*>(raw.data()), s, plan.config));
            PalettizedWeight general, fast;
            std::string why1, why2;
            const ElementWeights* sw = weighted ? &sens.w : nullptr;
            REQUIRE(PalettizeWeight(v, s, plan, kAll, &general, &why1, sw));
            REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), s, plan, kAll, true,
                                       &fast, &why2, sw));
            INFO("mode " << int(mode) << " lut " << int(lut) << " group " << group << " weighted " << weighted
                         << " nbits " << nbits);
            RequireSame(fast, general);
          }
        }
      }
    }
  }
}

TEST_CASE("float64 fast path on a tensor past 2^20 distinct values: radix sort, windows, buckets",
          "[palettizer]") {
  // 1,126,400 elements, per tensor: DistinctDouble radix-sorts, the DP takes the windowed solver
  // (past 2^18 values), and the weighted lookup buckets (past 2^20 distinct values).
  const TensorShape s = F64Shape({1100, 1024});
  const std::vector<double> v = HardValues(s.elements, 77);
  Sens sens(s.elements, 78);
  const std::string raw = EncodeElements(v, MT::FLOAT64);
  const auto* data = reinterpret_cast<const uint8_t*>(raw.data());
  for (bool weighted : {false, true}) {
    PalettizedWeight general, fast;
    std::string why;
    const WeightPlan plan = Plan(PalettizeMode::kKMeans, 4, 1100, 0);
    const ElementWeights* sw = weighted ? &sens.w : nullptr;
    REQUIRE(PalettizeWeight(v, s, plan, kAll, &general, &why, sw));
    REQUIRE(PalettizeWeightRaw(data, s, plan, kAll, true, &fast, &why, sw));
    INFO("weighted " << weighted);
    RequireSame(fast, general);
  }
  // The distinct values themselves against a sort and merge.
  DistinctValues d;
  REQUIRE(DistinctDouble(v.data(), ChannelLayout(s, 0), 0, 1100, &d));
  REQUIRE(d.values.size() >= (size_t(1) << 20));
  std::vector<WeightedPoint> pts(v.size());
  for (size_t e = 0; e < v.size(); ++e) pts[e] = {v[e], 1.0, 0.0};
  DistinctValues want;
  MergePoints(pts, false, &want);
  REQUIRE(d.values == want.values);
  REQUIRE(d.counts == want.counts);
}

TEST_CASE("float64 sweep widths equal single-width runs of the general path", "[palettizer]") {
  const TensorShape s = F64Shape({32, 48});
  const std::vector<double> v = HardValues(s.elements, 5);
  const std::string raw = EncodeElements(v, MT::FLOAT64);
  const WeightPlan plan = Plan(PalettizeMode::kKMeans, 4, 32, 0);
  std::vector<PalettizedWeight> swept;
  std::string why;
  REQUIRE(
      PalettizeWeightSweep(reinterpret_cast<const uint8_t*>(raw.data()), s, plan, kAll, true, &swept, &why));
  REQUIRE(swept.size() == kAll.size());
  for (size_t w = 0; w < kAll.size(); ++w) {
    PalettizedWeight general;
    REQUIRE(PalettizeWeight(v, s, WithNBits(plan, kAll[w]), kAll, &general, &why));
    general.decoded.clear();
    INFO("nbits " << kAll[w]);
    RequireSame(swept[w], general);
  }
}

TEST_CASE("float64 beyond the safe range, unique mode, and NaN stay with the general path's answers",
          "[palettizer]") {
  const TensorShape s = F64Shape({16, 8});
  std::vector<double> v = HardValues(s.elements, 9);
  const WeightPlan kmeans = Plan(PalettizeMode::kKMeans, 2, 16, 0);
  // Magnitudes past 2^256 need scaled error sums: not the fast path, and still palettized.
  v[7] = 1e300;
  std::string raw = EncodeElements(v, MT::FLOAT64);
  CHECK_FALSE(TakesFastPath(reinterpret_cast<const uint8_t*>(raw.data()), s, kmeans.config));
  PalettizedWeight p;
  std::string why;
  CHECK(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), s, kmeans, kAll, true, &p, &why));
  CHECK(p.lut.back() == 1e300);
  // Unique mode keeps the general path (the sign of its zero entry is its sort's).
  CHECK_FALSE(TakesFastPath(reinterpret_cast<const uint8_t*>(raw.data()), s,
                            Plan(PalettizeMode::kUnique, 0, 16, 0).config));
  // NaN is refused with the general path's reason.
  v[7] = NAN;
  raw = EncodeElements(v, MT::FLOAT64);
  REQUIRE(TakesFastPath(reinterpret_cast<const uint8_t*>(raw.data()), s, kmeans.config));
  CHECK_FALSE(
      PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), s, kmeans, kAll, true, &p, &why));
  CHECK(why == "holds NaN or Inf values");
}

TEST_CASE("float64 errors whose squares underflow: the general path's choice of entry", "[palettizer]") {
  // Mostly values near 1e-170, whose differences square to 0 or a subnormal, beside a few of 1 and
  // 2 that keep the tensor inside the safe range: the exact DP spends most entries on the tiny
  // values, and an element between two tiny entries ties at 0 squared error with both, where the
  // general path takes the lowest index and a comparison of |errors| would take the nearer.
  std::mt19937_64 rng(3);
  for (int round = 0; round < 6; ++round) {
    const TensorShape s = F64Shape({24, 10});
    std::vector<double> v(s.elements);
    for (double& x : v) x = double(rng() % 61) * 1e-171 * ((rng() % 4 == 0) ? -1 : 1);
    v[0] = 1.0, v[1] = 2.0, v[2] = -0.0;
    const std::string raw = EncodeElements(v, MT::FLOAT64);
    for (int nbits : {2, 3, 4}) {
      const WeightPlan plan = Plan(PalettizeMode::kKMeans, nbits, 24, 0);
      PalettizedWeight general, fast;
      std::string why;
      REQUIRE(PalettizeWeight(v, s, plan, kAll, &general, &why));
      REQUIRE(
          PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), s, plan, kAll, true, &fast, &why));
      INFO("round " << round << " nbits " << nbits);
      RequireSame(fast, general);
    }
  }
}

TEST_CASE("float64 weighted, every value distinct: counts not stored, the general path's bits",
          "[palettizer]") {
  // All 1,126,400 values distinct: the counts are dropped (DistinctValues) and each element's
  // value found by ValueIndex; with every sensitivity 0 the table falls back to counts of 1.
  const TensorShape s = F64Shape({1100, 1024});
  std::mt19937_64 rng(81);
  std::student_t_distribution<double> t(4.0);
  std::vector<double> v(s.elements);
  for (double& x : v) x = 0.02 * t(rng);
  v[5] = -0.0;
  Sens sens(s.elements, 82);
  DistinctValues d;
  std::vector<double> sbuf;
  std::vector<RepeatedElement> repeats;
  REQUIRE(DistinctDoubleWeighted(v.data(), ChannelLayout(s, 0), 0, 1100, sens.w, sbuf, repeats, &d));
  REQUIRE(d.values.size() == s.elements);
  REQUIRE(d.counts.empty());
  const std::string raw = EncodeElements(v, MT::FLOAT64);
  const auto* data = reinterpret_cast<const uint8_t*>(raw.data());
  PalettizedWeight general, fast;
  std::string why;
  const WeightPlan plan = Plan(PalettizeMode::kKMeans, 4, 1100, 0);
  REQUIRE(PalettizeWeight(v, s, plan, kAll, &general, &why, &sens.w));
  REQUIRE(PalettizeWeightRaw(data, s, plan, kAll, true, &fast, &why, &sens.w));
  RequireSame(fast, general);

  const TensorShape small = F64Shape({64, 32});
  const std::vector<double> head(v.begin(), v.begin() + long(small.elements));
  Sens zero(small.elements, 83);
  std::fill(zero.s.begin(), zero.s.end(), 0.0);
  const std::string raw_small = EncodeElements(head, MT::FLOAT64);
  const WeightPlan plan_small = Plan(PalettizeMode::kKMeans, 3, 64, 0);
  REQUIRE(PalettizeWeight(head, small, plan_small, kAll, &general, &why, &zero.w));
  REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw_small.data()), small, plan_small, kAll,
                             true, &fast, &why, &zero.w));
  RequireSame(fast, general);
}
