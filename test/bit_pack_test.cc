#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "encode/bit_pack.h"
#include "util/half.h"
#include "util/half_array.h"

using namespace palettize;

TEST_CASE("bit packing is LSB-first and round-trips for every width", "[encode]") {
  // Two 3-bit elements 0b101, 0b011 -> bits 101 then 011 from the LSB: 0b00011101.
  uint8_t two[2] = {5, 3};
  uint8_t out[1];
  PackBits(two, 2, 3, out);
  CHECK(out[0] == 0x1D);
  uint8_t four[4] = {1, 2, 3, 0};  // 2-bit: 01 10 11 00 -> 0b00111001
  PackBits(four, 4, 2, out);
  CHECK(out[0] == 0x39);

  std::mt19937 rng(7);
  for (int nbits : {1, 2, 3, 4, 5, 6, 7, 8}) {
    for (uint64_t n : {1, 7, 8, 9, 15, 16, 17, 63, 64, 1000, 4099}) {
      std::vector<uint8_t> idx(n);
      for (auto& v : idx) v = uint8_t(rng() & ((1u << nbits) - 1));
      std::vector<uint8_t> packed(PackedSize(n, nbits) + 1, 0xEE);
      PackBits(idx.data(), n, nbits, packed.data());
      CHECK(packed.back() == 0xEE);  // nothing written past the end
      for (uint64_t i = 0; i < n; ++i) REQUIRE(UnpackBits(packed.data(), i, nbits) == idx[i]);
      // Unused high bits of the last byte are zero.
      int used = int((n * nbits) % 8);
      if (used) CHECK((packed[PackedSize(n, nbits) - 1] >> used) == 0);
      // Bit by bit, as the format states it: element i's bit b is stream bit i * nbits + b.
      std::vector<uint8_t> want(PackedSize(n, nbits), 0);
      for (uint64_t i = 0; i < n; ++i)
        for (int b = 0; b < nbits; ++b)
          if ((idx[i] >> b) & 1) want[(i * nbits + b) / 8] |= uint8_t(1u << ((i * nbits + b) % 8));
      packed.pop_back();
      REQUIRE(packed == want);
    }
  }
}

TEST_CASE("double to float16 rounds once, to nearest even", "[encode]") {
  CHECK(DoubleToHalfBits(1.0) == 0x3C00);
  CHECK(DoubleToHalfBits(-2.0) == 0xC000);
  CHECK(DoubleToHalfBits(65504.0) == 0x7BFF);
  CHECK(DoubleToHalfBits(65519.99) == 0x7BFF);
  CHECK(DoubleToHalfBits(65520.0) == 0x7C00);
  CHECK(DoubleToHalfBits(0x1p-24) == 0x0001);
  CHECK(DoubleToHalfBits(0x1p-25) == 0x0000);        // tie to even: 0
  CHECK(DoubleToHalfBits(0x1.8p-24) == 0x0002);      // 1.5 ulp -> 2 (even)
  CHECK(DoubleToHalfBits(1.0 + 0x1p-11) == 0x3C00);  // tie -> even mantissa
  CHECK(DoubleToHalfBits(1.0 + 3 * 0x1p-11) == 0x3C02);
  // A double just above a tie must round up (double rounding through float would not).
  CHECK(DoubleToHalfBits(1.0 + 0x1p-11 + 0x1p-40) == 0x3C01);
  CHECK(DoubleToHalfBits(-0.0) == 0x8000);
  // Every half value converts back to itself.
  for (uint32_t b = 0; b < 0x7C00; ++b) REQUIRE(DoubleToHalfBits(HalfToFloat(uint16_t(b))) == b);
}

// The evaluator's float rounding (bit operations) must agree with the double reference on every
// float whose result it could get wrong: each float16 value, the floats next to it, and the
// floats next to each halfway point between neighbours (ties and their neighbours), in both signs,
// plus a stride through all float bit patterns (NaN, inf, subnormals included).
TEST_CASE("float to float16 and bfloat16 by bits agrees with the double rounding", "[encode]") {
  auto check = [](float f) {
    const uint16_t want = DoubleToHalfBits(double(f));
    const uint16_t got = FloatToHalfBits(f);
    if (std::isnan(f)) {
      REQUIRE(got == want);
      return;
    }
    REQUIRE(got == want);
    REQUIRE(RoundFloatToBFloat16(f) == float(RoundToBFloat16(double(f))));
  };
  auto around = [&](float v) {
    check(v);
    check(std::nextafter(v, INFINITY));
    check(std::nextafter(v, -INFINITY));
  };
  for (uint32_t b = 0; b < 0x7C00; ++b) {
    for (float sign : {1.0f, -1.0f}) {
      const float lo = sign * HalfToFloat(uint16_t(b));
      const float hi = sign * HalfToFloat(uint16_t(b + 1));
      around(lo);
      around(lo + (hi - lo) / 2);  // exact in float: the halfway point
    }
  }
  around(65520.0f);
  around(-65520.0f);
  for (uint64_t x = 0; x <= 0xFFFFFFFFu; x += 40961) {
    float f;
    const uint32_t bits = uint32_t(x);
    std::memcpy(&f, &bits, sizeof f);
    check(f);
  }
  check(INFINITY);
  check(-INFINITY);
  check(NAN);
}

// The array forms (F16C instructions where the CPU has them) agree with the scalar functions: every
// float16 bit pattern decoded, and floats around every float16 value and halfway point rounded,
// at lengths that leave a scalar tail.
TEST_CASE("float16 array conversions agree with the scalar ones", "[encode]") {
  std::vector<uint8_t> bytes;
  for (uint32_t b = 0; b < 0x10000; ++b) {
    bytes.push_back(uint8_t(b & 0xFF));
    bytes.push_back(uint8_t(b >> 8));
  }
  bytes.push_back(0);  // an odd offset below: the source need not be aligned
  std::vector<float> decoded(0x10000 - 3);
  HalfBytesToFloats(bytes.data() + 2, decoded.data(), decoded.size());
  for (size_t k = 0; k < decoded.size(); ++k) {
    const float want = HalfToFloat(uint16_t(k + 1));
    if (std::isnan(want))
      REQUIRE(std::isnan(decoded[k]));
    else
      REQUIRE(std::memcmp(&decoded[k], &want, sizeof want) == 0);
  }
  std::vector<float> v;
  for (uint32_t b = 0; b < 0x7C00; ++b) {
    for (float sign : {1.0f, -1.0f}) {
      const float lo = sign * HalfToFloat(uint16_t(b));
      const float mid = lo + (sign * HalfToFloat(uint16_t(b + 1)) - lo) / 2;
      for (float x : {lo, mid})
        for (float y : {x, std::nextafter(x, INFINITY), std::nextafter(x, -INFINITY)}) v.push_back(y);
    }
  }
  for (float x : {65519.0f, 65520.0f, -65520.0f, 1e9f, INFINITY, -INFINITY, 1e-30f, -1e-30f}) v.push_back(x);
  v.push_back(3.0f);  // 1 more than a multiple of 8 elements or not: a scalar tail either way
  std::vector<float> rounded = v;
  RoundFloatsToHalf(rounded.data(), rounded.size());
  for (size_t k = 0; k < v.size(); ++k) {
    const float want = HalfToFloat(FloatToHalfBits(v[k]));
    REQUIRE(std::memcmp(&rounded[k], &want, sizeof want) == 0);
  }
  std::vector<float> nan = {NAN, -NAN, 1.0f};
  RoundFloatsToHalf(nan.data(), nan.size());
  CHECK(std::isnan(nan[0]));
  CHECK(std::isnan(nan[1]));
  CHECK(nan[2] == 1.0f);
}
