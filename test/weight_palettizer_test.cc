// One weight through the palettizer: tables, indices, and the decompressed values it claims.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>

#include "MIL.pb.h"
#include "mil/dtype.h"
#include "mil/tensor_data.h"
#include "palettizer/weight_palettizer.h"
#include "test_util.h"

using namespace palettize;
using MT = CoreML::Specification::MILSpec::DataType;

namespace {

TensorShape Shape(std::vector<uint64_t> dims, int dtype = MT::FLOAT16) {
  return MakeShape(std::move(dims), dtype);
}

WeightPlan Plan(PalettizeMode mode, int nbits, uint64_t group_size, int axis = 0) {
  return PalettizePlan(mode, nbits, group_size, axis);
}

std::vector<double> Values(const TensorShape& s, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> n(0.0, 0.05);
  std::vector<double> v(s.elements);
  for (auto& x : v) x = RoundToDType(n(rng), s.mil_type);
  return v;
}

double Sse(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

const std::vector<int> kAll = {1, 2, 3, 4, 6, 8};

}  // namespace

TEST_CASE("kmeans: decoded values come from the table and the reported error is theirs", "[palettizer]") {
  for (int dtype : {int(MT::FLOAT16), int(MT::BFLOAT16), int(MT::FLOAT32)}) {
    TensorShape s = Shape({16, 24}, dtype);
    auto v = Values(s, 1);
    PalettizedWeight p;
    std::string why;
    REQUIRE(PalettizeWeight(v, s, Plan(PalettizeMode::kKMeans, 3, 4), kAll, &p, &why));
    CHECK(p.tables == 4);
    CHECK(p.lut.size() == 4 * 8);
    CHECK(p.sse == Approx(Sse(v, p.decoded)).epsilon(1e-12));
    for (uint64_t c = 0; c < 16; ++c)
      for (uint64_t i = 0; i < 24; ++i) {
        uint64_t e = c * 24 + i;
        CHECK(p.decoded[e] == p.lut[(c / 4) * 8 + p.indices[e]]);
        CHECK(RoundToDType(p.lut[(c / 4) * 8 + p.indices[e]], dtype) == p.lut[(c / 4) * 8 + p.indices[e]]);
      }
    // Each element took its nearest entry.
    for (uint64_t e = 0; e < s.elements; ++e) {
      const double* t = &p.lut[(e / 24 / 4) * 8];
      for (int j = 0; j < 8; ++j) REQUIRE(std::fabs(v[e] - p.decoded[e]) <= std::fabs(v[e] - t[j]));
    }
  }
}

TEST_CASE("kmeans with enough entries, and unique mode, are lossless", "[palettizer]") {
  TensorShape s = Shape({8, 8});
  std::vector<double> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = RoundToDType(0.125 * double(i % 5) - 0.25, s.mil_type);
  PalettizedWeight p;
  std::string why;
  REQUIRE(PalettizeWeight(v, s, Plan(PalettizeMode::kKMeans, 3, 8), kAll, &p, &why));
  CHECK(p.sse == 0);
  CHECK(p.decoded == v);
  REQUIRE(PalettizeWeight(v, s, Plan(PalettizeMode::kUnique, 0, 8), kAll, &p, &why));
  CHECK(p.nbits == 3);  // 5 values: the smallest width that holds them
  CHECK(p.decoded == v);
  REQUIRE(PalettizeWeight(v, s, Plan(PalettizeMode::kUnique, 0, 8), {1, 2, 4, 6, 8}, &p, &why));
  CHECK(p.nbits == 4);  // iOS16 has no 3-bit form
}

TEST_CASE("unique mode refuses more than 256 values; NaN and Inf are refused", "[palettizer]") {
  TensorShape s = Shape({32, 32});
  auto v = Values(s, 2);
  PalettizedWeight p;
  std::string why;
  CHECK_FALSE(PalettizeWeight(v, s, Plan(PalettizeMode::kUnique, 0, 32), kAll, &p, &why));
  CHECK(why.find("unique values, more than 256 fit a table") != std::string::npos);
  v[5] = NAN;
  CHECK_FALSE(PalettizeWeight(v, s, Plan(PalettizeMode::kKMeans, 4, 32), kAll, &p, &why));
  CHECK(why == "holds NaN or Inf values");
}

TEST_CASE("per-channel scale and int8 tables decode as Core ML computes them", "[palettizer]") {
  TensorShape s = Shape({8, 16});
  auto v = Values(s, 3);
  WeightPlan plan = Plan(PalettizeMode::kKMeans, 4, 8);
  plan.config.enable_per_channel_scale = true;
  plan.config.lut_dtype = LutDType::kInt8;
  PalettizedWeight p;
  std::string why;
  REQUIRE(PalettizeWeight(v, s, plan, kAll, &p, &why));
  REQUIRE(p.channel_scale.size() == 16);  // max over the 8 channels of each column
  CHECK(p.scale_shape == std::vector<uint64_t>{1, 16});
  for (uint64_t c = 0; c < 8; ++c)
    for (uint64_t i = 0; i < 16; ++i) {
      uint64_t e = c * 16 + i;
      double q = p.lut[p.indices[e]];
      CHECK(q == std::nearbyint(q));
      CHECK(std::fabs(q) <= 127);
      double entry = RoundToDType(p.lut_scale[0] * q, s.mil_type);
      CHECK(p.decoded[e] == RoundToDType(p.channel_scale[i] * entry, s.mil_type));
    }
  CHECK(p.sse == Approx(Sse(v, p.decoded)).epsilon(1e-12));
}

TEST_CASE("vector palettization groups cluster_dim channels per entry", "[palettizer]") {
  TensorShape s = Shape({8, 6});
  auto v = Values(s, 4);
  WeightPlan plan = Plan(PalettizeMode::kKMeans, 2, 8);
  plan.config.cluster_dim = 2;
  PalettizedWeight p;
  std::string why;
  REQUIRE(PalettizeWeight(v, s, plan, kAll, &p, &why));
  CHECK(p.indices_shape == std::vector<uint64_t>{4, 6});
  for (uint64_t j = 0; j < 4; ++j)
    for (uint64_t i = 0; i < 6; ++i)
      for (uint64_t d = 0; d < 2; ++d)
        CHECK(p.decoded[(2 * j + d) * 6 + i] == p.lut[p.indices[j * 6 + i] * 2 + d]);
}

TEST_CASE("the fast scalar path gives the general path's tables and indices", "[palettizer]") {
  std::mt19937 rng(11);
  for (int dtype : {int(MT::FLOAT16), int(MT::BFLOAT16), int(MT::FLOAT32)}) {
    for (auto mode : {PalettizeMode::kKMeans, PalettizeMode::kUniform, PalettizeMode::kUnique}) {
      for (auto lut : {LutDType::kFloat, LutDType::kInt8, LutDType::kUInt8}) {
        for (uint64_t group : {uint64_t(4), uint64_t(32)}) {
          TensorShape s = Shape({32, 5, 3}, dtype);
          std::vector<double> v = Values(s, unsigned(rng()));
          if (mode == PalettizeMode::kUnique)  // few distinct values, incl. both zeros
            for (size_t i = 0; i < v.size(); ++i)
              v[i] = (i % 7 == 0) ? -0.0 : RoundToDType(0.01 * double(i % 9), dtype);
          v[3] = -0.0;
          v[4] = 0.0;
          std::string raw = EncodeElements(v, dtype);
          WeightPlan plan = Plan(mode, mode == PalettizeMode::kUnique ? 0 : 3, group, 0);
          plan.config.lut_dtype = lut;
          PalettizedWeight general, fast;
          std::string why1, why2;
          bool a = PalettizeWeight(v, s, plan, kAll, &general, &why1);
          bool b = PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), s, plan, kAll, true,
                                      &fast, &why2);
          REQUIRE(a == b);
          REQUIRE(why1 == why2);
          if (!a) continue;
          CHECK(fast.nbits == general.nbits);
          CHECK(fast.lut == general.lut);
          CHECK(fast.lut_scale == general.lut_scale);
          CHECK(fast.lut_offset == general.lut_offset);
          CHECK(fast.indices == general.indices);
          CHECK(fast.decoded == general.decoded);
          CHECK(fast.sse == Approx(general.sse).epsilon(1e-12));
          CHECK(fast.max_abs_error == general.max_abs_error);
        }
      }
    }
  }
}

TEST_CASE("numeric edge cases: all-equal, subnormal, signed zeros, few distinct values", "[palettizer]") {
  std::string why;
  for (int dtype : {int(MT::FLOAT16), int(MT::BFLOAT16), int(MT::FLOAT32)}) {
    TensorShape s = Shape({16, 8}, dtype);
    auto lossless = [&](const std::vector<double>& v, PalettizeMode mode, int nbits) {
      std::string raw = EncodeElements(v, dtype);
      PalettizedWeight p;
      REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), s, Plan(mode, nbits, 16), kAll,
                                 true, &p, &why));
      CHECK(p.sse == 0);
      CHECK(p.max_abs_error == 0);
      for (size_t i = 0; i < v.size(); ++i) REQUIRE(p.decoded[i] == v[i]);
      return p;
    };
    // All elements equal: one distinct value fills the whole table.
    auto p = lossless(std::vector<double>(128, RoundToDType(0.3, dtype)), PalettizeMode::kKMeans, 4);
    CHECK(p.lut == std::vector<double>(16, RoundToDType(0.3, dtype)));
    // Subnormals (2^-24 is the smallest float16) and both zeros, fewer values than entries.
    std::vector<double> v(128);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(double(i % 3), -24) * ((i % 2) ? -1 : 1);
    v[0] = -0.0;
    lossless(v, PalettizeMode::kKMeans, 4);
    p = lossless(v, PalettizeMode::kUnique, 0);
    CHECK(p.nbits == 3);  // -2, -1, 0, 1, 2 ulps: five values (the zeros are one)
  }
}

TEST_CASE("the fast path refuses NaN and Inf in any group, after or without a first pass", "[palettizer]") {
  for (int dtype : {int(MT::FLOAT16), int(MT::BFLOAT16), int(MT::FLOAT32)}) {
    for (auto mode : {PalettizeMode::kKMeans, PalettizeMode::kUnique}) {
      for (const double bad : {double(NAN), double(INFINITY), -double(INFINITY)}) {
        for (const size_t at : {size_t(0), size_t(77), size_t(127)}) {  // first, middle, last group
          TensorShape s = Shape({16, 8}, dtype);
          std::vector<double> v = Values(s, 5);
          if (mode == PalettizeMode::kUnique)
            for (size_t i = 0; i < v.size(); ++i) v[i] = RoundToDType(0.125 * double(i % 5), dtype);
          v[at] = bad;
          const std::string raw = EncodeElements(v, dtype);
          PalettizedWeight p;
          std::string why;
          INFO("dtype " << dtype << " at " << at << " value " << bad);
          CHECK_FALSE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), s,
                                         Plan(mode, mode == PalettizeMode::kUnique ? 0 : 4, 4), kAll, false,
                                         &p, &why));
          CHECK(why == "holds NaN or Inf values");
          // The same weight without the bad value palettizes: the refusal was about it alone.
          v[at] = 0.5;
          const std::string fine = EncodeElements(v, dtype);
          CHECK(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(fine.data()), s,
                                   Plan(mode, mode == PalettizeMode::kUnique ? 0 : 4, 4), kAll, false, &p,
                                   &why));
        }
      }
    }
  }
}
