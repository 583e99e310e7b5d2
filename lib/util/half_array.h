// Whole arrays to and from float16, for the evaluator's hot paths (consts read from fp16
// weights, every fp16 activation rounded once per op). The results are exactly those of
// HalfToFloat and FloatToHalfBits (util/half.h) element by element, NaN payloads aside (a NaN
// stays a NaN of the same sign); on x86-64 CPUs with F16C the conversion instructions do the
// work, eight elements at a time, otherwise the scalar functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace palettize {

// dst[k] = the float16 whose little-endian bytes are src[2k], src[2k+1] (src need not be aligned).
void HalfBytesToFloats(const uint8_t* src, float* dst, size_t n);

// v[k] = the float16 value nearest to v[k] (ties to even; >= 65520 in magnitude to inf).
void RoundFloatsToHalf(float* v, size_t n);

}  // namespace palettize
