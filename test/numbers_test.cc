// Issue 12, item 8: the palettizer's numbers at the ends of double's range (N1), with extreme
// sensitivities (N2), on float16 subnormals (N3), and an SNR that is infinite only when lossless.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>

#include "MIL.pb.h"
#include "palettizer/weight_palettizer.h"
#include "sensitivity/sensitivity.h"
#include "test_util.h"
#include "util/half.h"
#include "util/pow2.h"

using namespace palettize;
using MT = CoreML::Specification::MILSpec::DataType;

namespace {

WeightPlan Plan(PalettizeMode mode, int nbits, bool per_channel_scale = false) {
  WeightPlan p;
  p.palettize = true;
  p.config.mode = mode;
  p.config.nbits = nbits;
  p.config.enable_per_channel_scale = per_channel_scale;
  p.channel_axis = 0;
  p.group_size = 32;
  return p;
}

// Clustered values: seven levels 0.25 apart plus noise.
std::vector<double> Clustered(size_t n, double scale, unsigned seed = 1) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> level(-3, 3);
  std::normal_distribution<double> noise(0.0, 0.03);
  std::vector<double> v(n);
  for (double& x : v) x = (level(rng) * 0.25 + noise(rng)) * scale;
  return v;
}

const std::vector<int> kAll = {1, 2, 3, 4, 6, 8};

}  // namespace

TEST_CASE("FarExponent leaves the safe range alone and brings the rest to 0.5 <= |x| < 1", "[numbers]") {
  CHECK(FarExponent(1.0) == 0);
  CHECK(FarExponent(0x1p255) == 0);
  CHECK(FarExponent(0x1p-256) == 0);
  CHECK(FarExponent(0.0) == 0);
  CHECK(FarExponent(INFINITY) == 0);
  for (double m : {0x1p256, 1e308, 0x1p-257, 1e-310, 4.9e-324}) {
    INFO(m);
    const double scaled = std::ldexp(m, -FarExponent(m));
    CHECK(scaled >= 0.5);
    CHECK(scaled < 1.0);
  }
}

TEST_CASE("N1: float64 weights near the largest double and subnormal ones cluster as ordinary ones",
          "[numbers][palettizer]") {
  const TensorShape s = MakeShape({32, 64}, MT::FLOAT32);
  TensorShape f64 = s;
  f64.mil_type = -1;  // float64: no rounding to a dtype (checkpoints)
  f64.bits = 64;
  const std::vector<double> base = Clustered(s.elements, 1.0);
  for (const bool pcs : {false, true}) {
    PalettizedWeight ref;
    std::string why;
    REQUIRE(PalettizeWeight(base, f64, Plan(PalettizeMode::kKMeans, 4, pcs), kAll, &ref, &why));
    // Powers of two: the same clustering exactly, scaled. 2^511: squares overflow, sums fit.
    for (const int e : {400, 511, -1000, -1060}) {
      INFO("per-channel scale " << pcs << ", 2^" << e);
      std::vector<double> v(base.size());
      for (size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(base[i], e);
      PalettizedWeight p;
      REQUIRE(PalettizeWeight(v, f64, Plan(PalettizeMode::kKMeans, 4, pcs), kAll, &p, &why));
      CHECK(std::isfinite(p.snr_db));
      if (e > -1022 + 8) {  // not subnormal: decoded values and errors scale exactly
        CHECK(p.indices == ref.indices);
        CHECK(p.snr_db == ref.snr_db);
        for (size_t i = 0; i < v.size(); ++i) REQUIRE(p.decoded[i] == std::ldexp(ref.decoded[i], e));
        CHECK(p.max_abs_error == std::ldexp(ref.max_abs_error, e));
      } else {  // subnormal: the values themselves lose bits
        CHECK(p.snr_db == Approx(ref.snr_db).margin(0.5));
      }
      CHECK(p.sse == std::ldexp(ref.sse, 2 * e));  // 0 once it underflows
    }
  }
}

TEST_CASE("N1: float64 vector weights beyond float's range cluster as ordinary ones",
          "[numbers][palettizer]") {
  // Vector k-means compares distances in float: weights past 2^60 or below 2^-60 (yet in double's
  // safe range) are scaled by a power of two first, so they give the ordinary clustering, scaled.
  TensorShape f64 = MakeShape({32, 64}, MT::FLOAT32);
  f64.mil_type = -1;
  f64.bits = 64;
  const std::vector<double> base = Clustered(f64.elements, 1.0);
  WeightPlan plan = Plan(PalettizeMode::kKMeans, 4);
  plan.config.cluster_dim = 2;
  PalettizedWeight ref;
  std::string why;
  REQUIRE(PalettizeWeight(base, f64, plan, kAll, &ref, &why));
  for (const int e : {140, 200, -140, -200}) {
    INFO("2^" << e);
    std::vector<double> v(base.size());
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::ldexp(base[i], e);
    PalettizedWeight p;
    REQUIRE(PalettizeWeight(v, f64, plan, kAll, &p, &why));
    CHECK(p.indices == ref.indices);
    CHECK(p.snr_db == ref.snr_db);
    CHECK(p.sse == std::ldexp(ref.sse, 2 * e));
  }
}

TEST_CASE("N1: errors past the largest double refuse the weight", "[numbers][palettizer]") {
  TensorShape f64 = MakeShape({32, 64}, MT::FLOAT32);
  f64.mil_type = -1;
  f64.bits = 64;
  std::vector<double> v = Clustered(f64.elements, 1e300);
  PalettizedWeight p;
  std::string why;
  CHECK_FALSE(PalettizeWeight(v, f64, Plan(PalettizeMode::kKMeans, 4), kAll, &p, &why));
  CHECK(why.rfind("its errors reach past the largest double (largest |value| ", 0) == 0);
  // Uniform tables of values of both signs near the largest double: the span overflows.
  std::vector<double> u = {-1.7e308, -1e308, 0.5e308, 1.7e308};
  u.resize(f64.elements, 1e308);
  CHECK_FALSE(PalettizeWeight(u, f64, Plan(PalettizeMode::kUniform, 2), kAll, &p, &why));
  CHECK(why.rfind("its errors reach past the largest double", 0) == 0);
}

TEST_CASE("N3: uniform tables on float16 subnormals: every element takes its nearest entry",
          "[numbers][palettizer]") {
  // Subnormals of a few ulps: the entries round onto the 2^-24 grid and many coincide.
  const TensorShape s = MakeShape({32, 64}, MT::FLOAT16);
  std::mt19937 rng(5);
  std::normal_distribution<double> n(0.0, 0x1p-22);
  std::vector<uint16_t> bits(s.elements);
  std::vector<double> v(s.elements);
  for (size_t i = 0; i < v.size(); ++i) {
    bits[i] = DoubleToHalfBits(n(rng));
    v[i] = HalfToFloat(bits[i]);
  }
  for (const int nbits : {2, 4, 8}) {
    INFO(nbits << " bits");
    PalettizedWeight fast, general;
    std::string why;
    REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(bits.data()), s,
                               Plan(PalettizeMode::kUniform, nbits), kAll, true, &fast, &why));
    REQUIRE(PalettizeWeight(v, s, Plan(PalettizeMode::kUniform, nbits), kAll, &general, &why));
    CHECK(fast.indices == general.indices);  // the histogram path agrees with the general one
    for (size_t i = 0; i < v.size(); ++i) {
      double best = INFINITY;
      for (double e : fast.lut) best = std::min(best, std::fabs(v[i] - e));
      REQUIRE(std::fabs(v[i] - fast.decoded[i]) == best);
    }
    // As good as the same values scaled by 2^20 into normal float16s, up to the rounding of the
    // entries to the subnormal grid (was below 0 dB: values stuck at the first of equal entries).
    std::vector<uint16_t> scaled(bits.size());
    for (size_t i = 0; i < v.size(); ++i) scaled[i] = DoubleToHalfBits(std::ldexp(v[i], 20));
    PalettizedWeight normal;
    REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(scaled.data()), s,
                               Plan(PalettizeMode::kUniform, nbits), kAll, false, &normal, &why));
    CHECK(fast.snr_db >= normal.snr_db - 3);
  }
}

TEST_CASE("snr_db is infinite exactly when every element decodes to itself", "[numbers][palettizer]") {
  const TensorShape s = MakeShape({32, 64}, MT::FLOAT32);
  std::vector<double> four(s.elements);
  for (size_t i = 0; i < four.size(); ++i) four[i] = double(int(i % 4) - 2) * 0.5;
  PalettizedWeight p;
  std::string why;
  REQUIRE(PalettizeWeight(four, s, Plan(PalettizeMode::kKMeans, 2), kAll, &p, &why));
  CHECK(p.sse == 0);
  CHECK(p.snr_db == INFINITY);
  REQUIRE(PalettizeWeight(four, s, Plan(PalettizeMode::kKMeans, 1), kAll, &p, &why));
  CHECK(p.sse > 0);
  CHECK(std::isfinite(p.snr_db));
}
