// Powers of two that keep sums of squares inside double's range. Multiplying by 2^e is exact
// (short of the subnormal range), so a clustering of scaled values is the scaled clustering, and a
// sum of scaled squares is the sum scaled by 2^2e: the scale can be undone exactly after.
#pragma once

#include <cmath>

namespace palettize {

// Magnitudes in [2^-kFarExponent, 2^kFarExponent) are safe: their squares, times weights and
// counts of the same range, sum far from overflow and underflow.
constexpr int kFarExponent = 256;

// For the largest magnitude `m` of some numbers: the e that brings m to [0.5, 1) by 2^-e when m
// lies outside the safe range, else 0, so that ordinary numbers keep exactly the arithmetic they
// always had. 0 for 0, Inf and NaN.
inline int FarExponent(double m) {
  if (!(m > 0) || std::isinf(m)) return 0;
  int e;
  std::frexp(m, &e);
  return e > kFarExponent || e <= -kFarExponent ? e : 0;
}

}  // namespace palettize
