// 16-bit float groups' distinct values (palettizer/distinct.h, DistinctHalf): each format's
// pattern-to-value conversion against util/half.h's for every finite pattern, and the distinct
// values, counts, patterns and sensitivity sums of groups against a map of the elements, in groups
// of fewer and of more elements than patterns, with the histograms left all zero.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "mil/dtype.h"
#include "palettizer/distinct.h"
#include "safetensors/safetensors.h"
#include "sensitivity/sensitivity.h"
#include "test_util.h"
#include "util/half.h"

using namespace palettize;

namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

bool Finite16(uint16_t b, bool bfloat) { return bfloat ? (b & 0x7F80) != 0x7F80 : (b & 0x7C00) != 0x7C00; }

}  // namespace

TEST_CASE("16-bit float groups: every finite pattern's value, both formats", "[distinct]") {
  int finite = 0;
  for (uint32_t b = 0; b < 65536; ++b) {
    if (Finite16(uint16_t(b), false)) {
      INFO("float16 pattern " << b);
      REQUIRE(Bits(kHalfFormat.Value(uint16_t(b))) == Bits(HalfToFloat(uint16_t(b))));
      ++finite;
    }
    if (Finite16(uint16_t(b), true)) {
      INFO("bfloat16 pattern " << b);
      REQUIRE(Bits(kBFloat16Format.Value(uint16_t(b))) == Bits(BFloat16ToFloat(uint16_t(b))));
      ++finite;
    }
  }
  CHECK(finite == 63488 + 65280);  // all but the 2 x 1,024 (float16) and 2 x 128 with exponent all ones
}

TEST_CASE("16-bit float groups: distinct values, counts and sensitivity sums against a map", "[distinct]") {
  std::mt19937_64 rng(16);
  std::student_t_distribution<double> t(4.0);
  std::vector<uint32_t> hist(65536, 0);
  std::vector<uint64_t> seen(1024, 0);
  std::vector<double> whist(65536, 0.0), sbuf;
  DistinctValues d;
  int groups = 0;
  // 16 x 96 rows of a 64 x 96 weight (the small path, each element marking its pattern) and 64 x
  // 2,048 (the large one, the counts read afterwards); float16 and bfloat16; with and without
  // sensitivities; the same DistinctValues reused throughout, as a thread's is.
  for (const uint64_t cols : {uint64_t(96), uint64_t(2048)}) {
    for (const bool bfloat : {false, true}) {
      for (const bool weighted : {false, true}) {
        const uint64_t rows = 64, c0 = cols == 96 ? 16 : 0, c1 = cols == 96 ? 32 : 64;
        std::vector<uint16_t> w(rows * cols);
        for (auto& x : w) {
          const double v = 0.02 * t(rng);
          x = bfloat ? uint16_t(Bits(float(v)) >> 16) : DoubleToHalfBits(v);
        }
        // Zeros of both signs, and a group's Inf when asked for below.
        w[c0 * cols + 3] = 0x0000, w[c0 * cols + 5] = 0x8000, w[c0 * cols + 7] = 0x8000;
        std::vector<double> s(w.size());
        for (auto& x : s) x = double(rng() % 1000) / 64;
        SafeTensor st;
        const ElementWeights sens = F64Sensitivities(s, &st);
        TensorShape shape;
        shape.mil_type = bfloat ? mil::DataType::BFLOAT16 : mil::DataType::FLOAT16;
        shape.dims = {rows, cols};
        shape.elements = rows * cols;
        shape.bits = 16;
        const Float16Format& format = bfloat ? kBFloat16Format : kHalfFormat;
        REQUIRE(DistinctHalf(format, w.data(), ChannelLayout(shape, 0), c0, c1, hist, seen,
                             weighted ? &sens : nullptr, whist, sbuf, &d));
        // The reference: by value (-0 and +0 one value, pattern 0), counts and summed sensitivities.
        std::map<double, std::pair<double, double>> want;
        std::map<double, uint16_t> pattern;
        for (uint64_t e = c0 * cols; e < c1 * cols; ++e) {
          const double v = bfloat ? BFloat16ToFloat(w[e]) : HalfToFloat(w[e]);
          want[v].first += 1;
          want[v].second += s[e];
          pattern[v] = v == 0 ? 0 : w[e];
        }
        INFO("cols " << cols << " bfloat " << bfloat << " weighted " << weighted);
        REQUIRE(d.values.size() == want.size());
        REQUIRE(d.counts.size() == want.size());
        REQUIRE(d.bits.size() == want.size());
        REQUIRE(d.weights.size() == (weighted ? want.size() : 0));
        size_t i = 0;
        for (const auto& [v, cw] : want) {
          INFO("value " << v);
          REQUIRE(d.values[i] == v);
          REQUIRE(Bits(float(d.values[i])) == Bits(float(v)));  // zero as +0
          REQUIRE(d.counts[i] == cw.first);
          REQUIRE(d.bits[i] == pattern[v]);
          if (weighted) REQUIRE(d.weights[i] == Approx(cw.second).epsilon(1e-12));
          ++i;
        }
        for (uint32_t b = 0; b < 65536; ++b) REQUIRE((hist[b] == 0 && whist[b] == 0));
        for (uint64_t word : seen) REQUIRE(word == 0);
        // Inf in the group: refused, and the histograms still left zero.
        w[c0 * cols + 11] = bfloat ? 0xFF80 : 0xFC00;
        CHECK_FALSE(DistinctHalf(format, w.data(), ChannelLayout(shape, 0), c0, c1, hist, seen,
                                 weighted ? &sens : nullptr, whist, sbuf, &d));
        for (uint32_t b = 0; b < 65536; ++b) REQUIRE((hist[b] == 0 && whist[b] == 0));
        for (uint64_t word : seen) REQUIRE(word == 0);
        ++groups;
      }
    }
  }
  CHECK(groups == 8);
}
