// IEEE 754 binary16 and bfloat16 to float conversion (exact: every such value is a float).
#pragma once

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
