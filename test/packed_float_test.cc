// Float32 groups of 2^20 elements and more without sensitivities keep their distinct values as
// floats and their counts as uint32_t (DistinctFloatPacked), and the exact solver reads them as
// such: the same values and counts as a sort and merge, the same clustering bit for bit as the
// solver on the same numbers as doubles, and through the fast path every output bit for bit the
// general path's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "MIL.pb.h"
#include "cluster/kmeans1d.h"
#include "mil/tensor_data.h"
#include "palettizer/distinct.h"
#include "palettizer/fast_path.h"
#include "palettizer/sweep.h"
#include "palettizer/weight_palettizer.h"
#include "test_util.h"

using namespace palettize;
using MT = CoreML::Specification::MILSpec::DataType;

namespace {

// Student-t values with duplicates, both zeros, subnormals and the extremes of the range.
std::vector<float> HardFloats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<double> t(4.0);
  std::vector<float> w(n);
  for (float& v : w) v = float(0.02 * t(rng));
  for (size_t i = 0; i < n / 200; ++i) w[rng() % n] = w[rng() % n];
  for (size_t i = 0; i < n / 1000; ++i) w[rng() % n] = (rng() & 1) ? 0.0f : -0.0f;
  for (size_t i = 0; i < n / 1000; ++i) w[rng() % n] = float(rng() % 5) * 1e-45f * ((rng() & 1) ? 1 : -1);
  w[0] = -0.0f, w[1] = 0.0f;
  return w;
}

// Tables and indices bit for bit. The float32 fast path sums its errors over the distinct values
// times their counts, the general path over the elements, so the sums agree to rounding only (the
// packed form against the plain one, bit for bit, is GroupTable's test below).
void RequireSame(const PalettizedWeight& fast, const PalettizedWeight& general) {
  REQUIRE(fast.nbits == general.nbits);
  REQUIRE(fast.lut == general.lut);
  REQUIRE(fast.lut_scale == general.lut_scale);
  REQUIRE(fast.lut_offset == general.lut_offset);
  REQUIRE(fast.indices == general.indices);
  REQUIRE(fast.max_abs_error == general.max_abs_error);
  REQUIRE(fast.sse == Approx(general.sse).epsilon(1e-9));
  REQUIRE(fast.signal == Approx(general.signal).epsilon(1e-9));
}

const std::vector<int> kAll = {1, 2, 3, 4, 6, 8};

}  // namespace

TEST_CASE("packed fp32 distinct values: a sort and merge's values and counts, the same zero", "[distinct]") {
  for (const size_t n : {size_t(1) << 20, (size_t(1) << 20) + 7, size_t(1100003)}) {
    const std::vector<float> w = HardFloats(n, n);
    const TensorShape shape = MakeShape({n}, MT::FLOAT32);
    const ChannelLayout L(shape, 0);
    DistinctValues packed, plain;
    std::vector<float> buf;
    REQUIRE(DistinctFloatPacked(w.data(), L, 0, n, &packed));
    REQUIRE(DistinctFloat(w.data(), L, 0, n, buf, &plain));
    INFO("n = " << n);
    REQUIRE(packed.values.empty());
    REQUIRE(packed.size() == plain.values.size());
    REQUIRE(plain.values.size() < n);  // duplicates merged
    const float* values = packed.packed.values();
    const uint32_t* counts = packed.packed.counts();
    size_t total = 0;
    for (size_t v = 0; v < packed.size(); ++v) {
      // Bits, not ==: the zero kept is the first sorted, -0, in both.
      if (!(double(values[v]) == plain.values[v] &&
            std::signbit(values[v]) == std::signbit(plain.values[v]) && double(counts[v]) == plain.counts[v]))
        FAIL("value " << v << ": " << values[v] << " x " << counts[v] << " against " << plain.values[v]
                      << " x " << plain.counts[v]);
      total += counts[v];
    }
    REQUIRE(total == n);
  }
  // Every value distinct (the merge's stores then run level with the keys they replace), both
  // signs, shuffled, and a size that leaves a tail past the last block of eight.
  {
    const size_t n = (size_t(1) << 20) + 3;
    std::vector<float> w(n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t bits = 0x3F800000u + uint32_t(i / 2);  // 1.0f and the floats above it
      std::memcpy(&w[i], &bits, 4);
      if (i % 2) w[i] = -w[i];
    }
    std::shuffle(w.begin(), w.end(), std::mt19937_64(9));
    DistinctValues packed;
    REQUIRE(DistinctFloatPacked(w.data(), ChannelLayout(MakeShape({n}, MT::FLOAT32), 0), 0, n, &packed));
    std::sort(w.begin(), w.end());
    REQUIRE(packed.size() == n);
    for (size_t v = 0; v < n; ++v)
      if (!(packed.packed.values()[v] == w[v] && packed.packed.counts()[v] == 1))
        FAIL("value " << v << ": " << packed.packed.values()[v] << " x " << packed.packed.counts()[v]);
  }
  // NaN and Inf are refused, and nothing is kept.
  std::vector<float> w = HardFloats(size_t(1) << 20, 3);
  const TensorShape shape = MakeShape({w.size()}, MT::FLOAT32);
  for (const float bad : {std::nanf(""), INFINITY, -INFINITY}) {
    w[12345] = bad;
    DistinctValues d;
    REQUIRE_FALSE(DistinctFloatPacked(w.data(), ChannelLayout(shape, 0), 0, w.size(), &d));
    REQUIRE(d.packed.bytes.data() == nullptr);
  }
}

TEST_CASE("exact 1-D k-means on floats and counts equals it on the same numbers as doubles", "[kmeans]") {
  std::mt19937_64 rng(11);
  std::student_t_distribution<double> t(4.0);
  // 300,000 values take the windowed solver; 100,000 at k 16 and 40 at any k the other solvers
  // (on doubles converted from the floats); k = 1 and k = n their own loops.
  for (const size_t n : {size_t(300000), size_t(100000), size_t(40)}) {
    std::vector<float> x;
    while (x.size() < n) x.push_back(float(0.02 * t(rng)));
    std::sort(x.begin(), x.end());
    x.erase(std::unique(x.begin(), x.end()), x.end());
    std::vector<uint32_t> counts(x.size());
    for (uint32_t& c : counts) c = (rng() % 4 == 0) ? uint32_t(1 + rng() % 50) : 1u;
    const std::vector<double> xd(x.begin(), x.end()), wd(counts.begin(), counts.end());
    for (const size_t k : {size_t(1), size_t(2), size_t(16), size_t(64), size_t(256), x.size()}) {
      const Clustering1D a = OptimalKMeans1D(x.data(), counts.data(), x.size(), k);
      const Clustering1D b = OptimalKMeans1D(xd.data(), wd.data(), xd.size(), k);
      INFO("n = " << x.size() << ", k = " << k);
      REQUIRE(a.starts == b.starts);
      REQUIRE(a.centroids == b.centroids);
      REQUIRE(a.sse == b.sse);
    }
  }
}

TEST_CASE("fp32 fast path on a tensor past 2^20 elements (packed) equals the general path", "[palettizer]") {
  // 1,126,400 elements per tensor: packed distinct values, the windowed solver, the run lookup.
  const TensorShape s = MakeShape({1100, 1024}, MT::FLOAT32);
  const std::vector<float> w = HardFloats(s.elements, 21);
  const std::vector<double> v(w.begin(), w.end());
  const std::string raw = EncodeElements(v, MT::FLOAT32);
  const auto* data = reinterpret_cast<const uint8_t*>(raw.data());
  for (auto mode : {PalettizeMode::kKMeans, PalettizeMode::kUniform}) {
    for (auto lut : {LutDType::kFloat, LutDType::kInt8}) {
      WeightPlan plan = PalettizePlan(mode, 4, 1100, 0);
      plan.config.lut_dtype = lut;
      PalettizedWeight general, fast;
      std::string why;
      REQUIRE(PalettizeWeight(v, s, plan, kAll, &general, &why));
      REQUIRE(PalettizeWeightRaw(data, s, plan, kAll, false, &fast, &why));
      INFO("mode " << int(mode) << " lut " << int(lut));
      RequireSame(fast, general);
    }
  }
  // GroupTable and GroupIndices on the packed form against the plain one (DistinctFloat's
  // doubles): tables, nearest entries, indices and every error sum bit for bit.
  const ChannelLayout L(s, 0);
  DistinctValues packed, plain;
  std::vector<float> buf;
  REQUIRE(DistinctFloatPacked(w.data(), L, 0, 1100, &packed));
  REQUIRE(DistinctFloat(w.data(), L, 0, 1100, buf, &plain));
  for (auto mode : {PalettizeMode::kKMeans, PalettizeMode::kUniform}) {
    for (auto lut : {LutDType::kFloat, LutDType::kUInt8}) {
      for (const uint64_t K : {uint64_t(4), uint64_t(16), uint64_t(256)}) {
        PalettizeConfig cfg;
        cfg.mode = mode;
        cfg.lut_dtype = lut;
        std::vector<double> lut_a(K), lut_b(K), ent_a(K), ent_b(K);
        double scale_a = 0, scale_b = 0, offset_a = 0, offset_b = 0;
        std::vector<uint8_t> near_a, near_b, idx_a(s.elements), idx_b(s.elements);
        const GroupTotals a =
            GroupTable(packed, cfg, MT::FLOAT32, K, lut_a.data(), ent_a.data(), &scale_a, &offset_a, &near_a);
        const GroupTotals b =
            GroupTable(plain, cfg, MT::FLOAT32, K, lut_b.data(), ent_b.data(), &scale_b, &offset_b, &near_b);
        GroupIndices(data, MT::FLOAT32, L, 1100, 0, packed, near_a, idx_a.data());
        GroupIndices(data, MT::FLOAT32, L, 1100, 0, plain, near_b, idx_b.data());
        INFO("mode " << int(mode) << " lut " << int(lut) << " K " << K);
        REQUIRE(lut_a == lut_b);
        REQUIRE(ent_a == ent_b);
        REQUIRE(scale_a == scale_b);
        REQUIRE(offset_a == offset_b);
        REQUIRE(near_a == near_b);
        REQUIRE(idx_a == idx_b);
        REQUIRE(a.sse == b.sse);
        REQUIRE(a.signal == b.signal);
        REQUIRE(a.max_err == b.max_err);
      }
    }
  }
  // The sweep's widths against single widths of the general path.
  const WeightPlan plan = PalettizePlan(PalettizeMode::kKMeans, 4, 1100, 0);
  std::vector<PalettizedWeight> swept;
  std::string why;
  REQUIRE(PalettizeWeightSweep(data, s, plan, {2, 6}, true, &swept, &why));
  REQUIRE(swept.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    PalettizedWeight general;
    REQUIRE(PalettizeWeight(v, s, WithNBits(plan, i == 0 ? 2 : 6), kAll, &general, &why));
    INFO("nbits " << (i == 0 ? 2 : 6));
    RequireSame(swept[i], general);
  }
}

TEST_CASE("fp32 past 2^20 elements with few distinct values: packed, unique and k-means tables",
          "[palettizer]") {
  // 200 distinct values over 2^20 elements: the packed values go to unique mode's table and to
  // the solver's double path (too few values for the windows).
  const TensorShape s = MakeShape({1024, 1024}, MT::FLOAT32);
  std::mt19937_64 rng(8);
  std::vector<double> v(s.elements);
  for (double& x : v) x = double(float(0.001 * double(int(rng() % 200) - 100)));
  const std::string raw = EncodeElements(v, MT::FLOAT32);
  const auto* data = reinterpret_cast<const uint8_t*>(raw.data());
  for (auto mode : {PalettizeMode::kUnique, PalettizeMode::kKMeans}) {
    const WeightPlan plan = PalettizePlan(mode, 4, 1024, 0);
    PalettizedWeight general, fast;
    std::string why;
    REQUIRE(PalettizeWeight(v, s, plan, kAll, &general, &why));
    REQUIRE(PalettizeWeightRaw(data, s, plan, kAll, false, &fast, &why));
    INFO("mode " << int(mode));
    if (mode == PalettizeMode::kUnique) REQUIRE(fast.nbits == 8);
    RequireSame(fast, general);
  }
}
