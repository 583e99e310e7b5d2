#include "util/half_array.h"

#include <cstring>

#include "util/half.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define PALETTIZE_HAVE_F16C_PATH 1
#endif

namespace palettize {

namespace {

#ifdef PALETTIZE_HAVE_F16C_PATH
// Compiled for F16C whatever the build's -march; called only when the CPU has it.
__attribute__((target("avx,f16c"))) void HalfBytesToFloatsF16c(const uint8_t* src, float* dst, size_t n) {
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * k));
    _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(h));
  }
  for (; k < n; ++k) {
    uint16_t h;
    std::memcpy(&h, src + 2 * k, sizeof h);
    dst[k] = HalfToFloat(h);
  }
}

__attribute__((target("avx,f16c"))) void RoundFloatsToHalfF16c(float* v, size_t n) {
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(v + k), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(v + k, _mm256_cvtph_ps(h));
  }
  for (; k < n; ++k) v[k] = RoundFloatToHalf(v[k]);
}

// AVX usable (the CPU has it and the OS saves its registers: __builtin_cpu_supports checks both)
// and the F16C bit of CPUID leaf 1 (not every compiler's __builtin_cpu_supports names "f16c").
bool HasF16c() {
  static const bool has = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
  }();
  return has;
}
#endif

}  // namespace

void HalfBytesToFloats(const uint8_t* src, float* dst, size_t n) {
#ifdef PALETTIZE_HAVE_F16C_PATH
  if (HasF16c()) return HalfBytesToFloatsF16c(src, dst, n);
#endif
  for (size_t k = 0; k < n; ++k) {
    uint16_t h;
    std::memcpy(&h, src + 2 * k, sizeof h);
    dst[k] = HalfToFloat(h);
  }
}

void RoundFloatsToHalf(float* v, size_t n) {
#ifdef PALETTIZE_HAVE_F16C_PATH
  if (HasF16c()) return RoundFloatsToHalfF16c(v, n);
#endif
  for (size_t k = 0; k < n; ++k) v[k] = RoundFloatToHalf(v[k]);
}

}  // namespace palettize
