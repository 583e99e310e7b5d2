// IEEE 754 binary16 and bfloat16 to float conversion (exact: every such value is a float), and
// rounding doubles to them.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace palettize {

inline float BitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline float HalfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) return BitsToFloat(sign | 0x7F800000 | (mant << 13));  // inf, NaN
  if (exp != 0) return BitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return BitsToFloat(sign);  // +-0
  // Subnormal: value = mant * 2^-24, exact in float.
  float f = float(mant) * (1.0f / 16777216.0f);
  return sign ? -f : f;
}

inline float BFloat16ToFloat(uint16_t b) { return BitsToFloat(uint32_t(b) << 16); }

}  // namespace palettize

namespace palettize {

// The binary16 nearest to `d` (ties to even), as bits. Rounds once, directly from double, as
// numpy's astype(float16) does, so no double-rounding through float.
inline uint16_t DoubleToHalfBits(double d) {
  const uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  const double a = std::fabs(d);
  if (std::isnan(d)) return sign | 0x7E00;
  if (a >= 65520.0) return sign | 0x7C00;  // halfway above 65504 rounds to even, i.e. to inf
  int e;
  std::frexp(a, &e);                                         // a = m * 2^e, m in [0.5, 1)
  const int ulp_exp = std::max(e - 11, -24);                 // normal: 11 significant bits; subnormal: 2^-24
  const double r = std::nearbyint(std::ldexp(a, -ulp_exp));  // ties to even in the default mode
  const double v = std::ldexp(r, ulp_exp);                   // exactly representable now
  if (v == 0) return sign;
  if (v < 0x1p-14) return sign | uint16_t(std::ldexp(v, 24));  // subnormal
  std::frexp(v, &e);
  const uint16_t exp_field = uint16_t(e - 1 + 15);
  const uint16_t mant = uint16_t(std::ldexp(v, 11 - e) - 1024.0);
  return sign | uint16_t(exp_field << 10) | mant;
}

// The binary16 nearest to the float `f` (ties to even), as bits: the same result as
// DoubleToHalfBits(f), by integer operations on f's bits (the evaluator rounds every fp16
// activation, so this is a hot path). Normal results round the 23-bit mantissa to 10 bits in
// place (a carry moves into the exponent, as it should); subnormal ones, |f| < 2^-14, are
// rounded to a multiple of 2^-24 by adding 0.5f, whose ulp is 2^-24 (default rounding mode).
inline uint16_t FloatToHalfBits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const uint32_t a = x & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | 0x7E00;   // NaN
  if (a >= 0x477FF000) return sign | 0x7C00;  // >= 65520 (halfway above 65504): inf
  if (a < 0x38800000) {                       // below 2^-14
    const float v = BitsToFloat(a) + 0.5f;    // 0.5 + k * 2^-24, k in [0, 1024]
    uint32_t vb;
    std::memcpy(&vb, &v, sizeof vb);
    return sign | uint16_t(vb - 0x3F000000);  // k = 1024 is the smallest normal's encoding
  }
  const uint32_t r = a + 0xFFF + ((a >> 13) & 1);
  return sign | uint16_t((r >> 13) - (uint32_t(127 - 15) << 10));
}

// The float16 value nearest to `f`, as a float.
inline float RoundFloatToHalf(float f) { return HalfToFloat(FloatToHalfBits(f)); }

// The bfloat16 value nearest to `f` (ties to even), as a float: DoubleToBFloat16Bits(f) by
// rounding f's bits to their upper 16 (float subnormals and the overflow to inf included).
inline float RoundFloatToBFloat16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if ((x & 0x7FFFFFFF) > 0x7F800000) return BFloat16ToFloat(uint16_t(((x >> 16) & 0x8000) | 0x7FC0));
  return BFloat16ToFloat(uint16_t((x + 0x7FFF + ((x >> 16) & 1)) >> 16));
}

// `d` rounded to a float16 value, as a double.
inline double RoundToHalf(double d) { return HalfToFloat(DoubleToHalfBits(d)); }

// The bfloat16 nearest to `d` (ties to even), as bits: the analog of DoubleToHalfBits, rounding
// once from double (8 significant bits; subnormals below 2^-126 step by 2^-133).
inline uint16_t DoubleToBFloat16Bits(double d) {
  const uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  const double a = std::fabs(d);
  if (std::isnan(d)) return sign | 0x7FC0;
  if (a >= 0x1.FFp127) return sign | 0x7F80;  // halfway above the largest, 0x1.FEp127, rounds to inf
  int e;
  std::frexp(a, &e);
  const int ulp_exp = std::max(e - 8, -133);
  const float v = float(std::ldexp(std::nearbyint(std::ldexp(a, -ulp_exp)), ulp_exp));  // exact in float
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return sign | uint16_t(bits >> 16);
}

// `d` rounded to a bfloat16 value, as a double.
inline double RoundToBFloat16(double d) { return BFloat16ToFloat(DoubleToBFloat16Bits(d)); }

}  // namespace palettize
