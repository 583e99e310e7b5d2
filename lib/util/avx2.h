// Whether this build has AVX2 copies of its kernels (x86-64 with GCC or Clang, unless
// PALETTIZE_NO_AVX2 is defined), and whether the processor it runs on can use them. Each kernel's
// AVX2 copy and its portable one compute the same bits; the copies only run faster.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(PALETTIZE_NO_AVX2)
#define PALETTIZE_AVX2 1
#else
#define PALETTIZE_AVX2 0
#endif

namespace palettize {

inline bool HasAvx2() {
#if PALETTIZE_AVX2
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
#else
  return false;
#endif
}

}  // namespace palettize
