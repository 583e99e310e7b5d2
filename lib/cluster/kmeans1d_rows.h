// The row scans of the exact 1-D k-means DP (kmeans1d.cc) and of its remainder bounds
// (kmeans1d_remainder.cc): prefix sums as double-double pairs, and the leftmost minimum of
// prev[m] + cost(m, p) over a range of candidates m, scalar or four candidates at a time with AVX2
// (bit for bit the scalar scan). Internal to lib/cluster.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "util/avx2.h"

#if PALETTIZE_AVX2
#include <immintrin.h>
#endif

namespace palettize::detail {

// Where a row's scan starts and its result: the leftmost minimum over the scanned candidates.
struct RowMin {
  size_t arg;
  double value;
};

// One row of a divide-and-conquer level: prefix length p takes its leftmost minimum over
// candidates [begin, end].
struct RowRange {
  uint32_t p, begin, end;
};

// Prefix sums of w, w*x, w*x^2 (x shifted by the weighted mean) as hi (the double sum) + lo (its
// accumulated rounding errors) pairs, one array each so that a row scan loads them as vectors.
// Every array holds kPad entries past n so that the vector scan may read a whole last vector.
struct PrefixSums {
  static constexpr size_t kPad = 4;
  std::vector<double> w, s1, s2, w_lo, s1_lo, s2_lo;
};

// Fills ps with the prefix sums of values shifted by their weighted mean (n + 1 entries and the
// padding); returns the shift.
inline double BuildPrefixSums(const double* values, const double* weights, size_t n, PrefixSums* ps) {
  for (auto* a : {&ps->w, &ps->s1, &ps->s2, &ps->w_lo, &ps->s1_lo, &ps->s2_lo})
    a->resize(n + 1 + PrefixSums::kPad);
  // Any shift near the weighted mean centres the sums; double precision finds one.
  double sw = 0, swx = 0;
  for (size_t i = 0; i < n; ++i) {
    sw += weights[i];
    swx += weights[i] * values[i];
  }
  const double shift = swx / sw;
  ps->w[0] = ps->s1[0] = ps->s2[0] = 0;
  ps->w_lo[0] = ps->s1_lo[0] = ps->s2_lo[0] = 0;
  // Each running sum is a pair: hi takes the plain sum and lo every rounding error of it
  // (Knuth's TwoSum), so hi + lo is the sum of the terms to about 2^-106, while each step's
  // chain of dependent additions stays one long.
  double w = 0, s1 = 0, s2 = 0, w_lo = 0, s1_lo = 0, s2_lo = 0;
  auto add = [](double& hi, double& lo, double t) {
    const double sum = hi + t;
    const double back = sum - hi;
    lo += (hi - (sum - back)) + (t - back);
    hi = sum;
  };
  for (size_t i = 0; i < n; ++i) {
    const double x = values[i] - shift;
    const double wx = weights[i] * x;
    add(w, w_lo, weights[i]);
    add(s1, s1_lo, wx);
    add(s2, s2_lo, wx * x);
    ps->w[i + 1] = w, ps->s1[i + 1] = s1, ps->s2[i + 1] = s2;
    ps->w_lo[i + 1] = w_lo, ps->s1_lo[i + 1] = s1_lo, ps->s2_lo[i + 1] = s2_lo;
  }
  return shift;
}

// The cost of values [m, p) as one cluster, as the scans compute it.
inline double RangeCost(const PrefixSums& ps, size_t m, size_t p) {
  const double w = (ps.w[p] - ps.w[m]) + (ps.w_lo[p] - ps.w_lo[m]);
  const double s1 = (ps.s1[p] - ps.s1[m]) + (ps.s1_lo[p] - ps.s1_lo[m]);
  const double s2 = (ps.s2[p] - ps.s2[m]) + (ps.s2_lo[p] - ps.s2_lo[m]);
  const double c = s2 - s1 * (s1 / w);
  return c > 0 ? c : 0;
}

// min over m in [begin, end] of prev[m] + cost(m, p), leftmost on ties. The hi parts of two
// nearby prefixes cancel exactly (Sterbenz), so hi difference plus lo difference gives W, S1, S2
// of the range to double precision relative to the range itself, not to the prefix totals.
inline RowMin ScanRowScalar(const PrefixSums& ps, const double* prev, size_t p, size_t begin, size_t end) {
  const double bw = ps.w[p], bs1 = ps.s1[p], bs2 = ps.s2[p];
  const double bwl = ps.w_lo[p], bs1l = ps.s1_lo[p], bs2l = ps.s2_lo[p];
  RowMin best{begin, std::numeric_limits<double>::infinity()};
  for (size_t m = begin; m <= end; ++m) {
    const double w = (bw - ps.w[m]) + (bwl - ps.w_lo[m]);
    const double s1 = (bs1 - ps.s1[m]) + (bs1l - ps.s1_lo[m]);
    const double s2 = (bs2 - ps.s2[m]) + (bs2l - ps.s2_lo[m]);
    const double c = s2 - s1 * (s1 / w);
    const double v = prev[m] + (c > 0 ? c : 0.0);
    if (v < best.value) best = {m, v};
  }
  return best;
}

#if PALETTIZE_AVX2
// Each lane of (v, i) takes its partner's pair (lanes permuted by kSwap) when that is smaller, or
// equal with a smaller index.
template <int kSwap>
__attribute__((target("avx2"))) inline void MergeLanes(__m256d& v, __m256i& i) {
  const __m256d ov = _mm256_castsi256_pd(_mm256_permute4x64_epi64(_mm256_castpd_si256(v), kSwap));
  const __m256i oi = _mm256_permute4x64_epi64(i, kSwap);
  const __m256d take = _mm256_or_pd(
      _mm256_cmp_pd(ov, v, _CMP_LT_OQ),
      _mm256_and_pd(_mm256_cmp_pd(ov, v, _CMP_EQ_OQ), _mm256_castsi256_pd(_mm256_cmpgt_epi64(i, oi))));
  v = _mm256_blendv_pd(v, ov, take);
  i = _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(i), _mm256_castsi256_pd(oi), take));
}

// The same arithmetic, four candidates at a time. The target is avx2 without fma, so the compiler
// cannot contract s2 - s1 * q into a fused multiply-add: every value is bit-identical to the
// scalar scan's, and so is the answer (each lane keeps its own leftmost minimum; the lanes are
// then merged by value, then by index).
__attribute__((target("avx2"), always_inline)) inline RowMin ScanRowAvx2(const PrefixSums& ps,
                                                                         const double* prev, size_t p,
                                                                         size_t begin, size_t end) {
  const __m256d bw = _mm256_set1_pd(ps.w[p]), bs1 = _mm256_set1_pd(ps.s1[p]);
  const __m256d bs2 = _mm256_set1_pd(ps.s2[p]), bwl = _mm256_set1_pd(ps.w_lo[p]);
  const __m256d bs1l = _mm256_set1_pd(ps.s1_lo[p]), bs2l = _mm256_set1_pd(ps.s2_lo[p]);
  const __m256d zero = _mm256_setzero_pd();
  const __m256d inf = _mm256_set1_pd(std::numeric_limits<double>::infinity());
  const __m256i four = _mm256_set1_epi64x(4);
  const __m256i last = _mm256_set1_epi64x(static_cast<long long>(end));
  __m256i idx =
      _mm256_add_epi64(_mm256_set1_epi64x(static_cast<long long>(begin)), _mm256_setr_epi64x(0, 1, 2, 3));
  __m256d best_v = inf;
  __m256i best_i = idx;
  for (size_t m = begin; m <= end; m += 4) {
    const __m256d w = _mm256_add_pd(_mm256_sub_pd(bw, _mm256_loadu_pd(&ps.w[m])),
                                    _mm256_sub_pd(bwl, _mm256_loadu_pd(&ps.w_lo[m])));
    const __m256d s1 = _mm256_add_pd(_mm256_sub_pd(bs1, _mm256_loadu_pd(&ps.s1[m])),
                                     _mm256_sub_pd(bs1l, _mm256_loadu_pd(&ps.s1_lo[m])));
    const __m256d s2 = _mm256_add_pd(_mm256_sub_pd(bs2, _mm256_loadu_pd(&ps.s2[m])),
                                     _mm256_sub_pd(bs2l, _mm256_loadu_pd(&ps.s2_lo[m])));
    const __m256d c = _mm256_sub_pd(s2, _mm256_mul_pd(s1, _mm256_div_pd(s1, w)));
    // c > 0 ? c : 0, like the scalar scan (max would also map NaN to 0, so compare and blend).
    const __m256d cpos = _mm256_and_pd(c, _mm256_cmp_pd(c, zero, _CMP_GT_OQ));
    __m256d v = _mm256_add_pd(_mm256_loadu_pd(&prev[m]), cpos);
    // Lanes past `end` never win.
    const __m256i beyond = _mm256_cmpgt_epi64(idx, last);
    v = _mm256_blendv_pd(v, inf, _mm256_castsi256_pd(beyond));
    const __m256d better = _mm256_cmp_pd(v, best_v, _CMP_LT_OQ);
    best_v = _mm256_blendv_pd(best_v, v, better);
    best_i =
        _mm256_castpd_si256(_mm256_blendv_pd(_mm256_castsi256_pd(best_i), _mm256_castsi256_pd(idx), better));
    idx = _mm256_add_epi64(idx, four);
  }
  // Merge the lanes without branches: a branch here would wait on the divisions above, and its
  // misprediction would discard the next row's work that the processor has started.
  MergeLanes<0x4E>(best_v, best_i);  // halves
  MergeLanes<0xB1>(best_v, best_i);  // neighbours
  RowMin best{static_cast<size_t>(_mm256_extract_epi64(best_i, 0)), _mm256_cvtsd_f64(best_v)};
  return best;
}
// ScanRowAvx2 for at most four candidates (end - begin < 4), the common case deep in divide and
// conquer: one vector of candidates, no loop, and the leftmost minimum found by comparing every
// lane with the minimum, so nothing branches on the divisions.
__attribute__((target("avx2"), always_inline)) inline RowMin ScanRowAvx2Short(const PrefixSums& ps,
                                                                              const double* prev, size_t p,
                                                                              size_t begin, size_t end) {
  const size_t m = begin;
  const __m256d w = _mm256_add_pd(_mm256_sub_pd(_mm256_set1_pd(ps.w[p]), _mm256_loadu_pd(&ps.w[m])),
                                  _mm256_sub_pd(_mm256_set1_pd(ps.w_lo[p]), _mm256_loadu_pd(&ps.w_lo[m])));
  const __m256d s1 = _mm256_add_pd(_mm256_sub_pd(_mm256_set1_pd(ps.s1[p]), _mm256_loadu_pd(&ps.s1[m])),
                                   _mm256_sub_pd(_mm256_set1_pd(ps.s1_lo[p]), _mm256_loadu_pd(&ps.s1_lo[m])));
  const __m256d s2 = _mm256_add_pd(_mm256_sub_pd(_mm256_set1_pd(ps.s2[p]), _mm256_loadu_pd(&ps.s2[m])),
                                   _mm256_sub_pd(_mm256_set1_pd(ps.s2_lo[p]), _mm256_loadu_pd(&ps.s2_lo[m])));
  const __m256d c = _mm256_sub_pd(s2, _mm256_mul_pd(s1, _mm256_div_pd(s1, w)));
  const __m256d cpos = _mm256_and_pd(c, _mm256_cmp_pd(c, _mm256_setzero_pd(), _CMP_GT_OQ));
  __m256d v = _mm256_add_pd(_mm256_loadu_pd(&prev[m]), cpos);
  const __m256i beyond = _mm256_cmpgt_epi64(_mm256_setr_epi64x(0, 1, 2, 3),
                                            _mm256_set1_epi64x(static_cast<long long>(end - begin)));
  v = _mm256_blendv_pd(v, _mm256_set1_pd(std::numeric_limits<double>::infinity()),
                       _mm256_castsi256_pd(beyond));
  __m256d lowest = _mm256_min_pd(v, _mm256_permute4x64_pd(v, 0x4E));
  lowest = _mm256_min_pd(lowest, _mm256_permute4x64_pd(lowest, 0xB1));
  const int lanes = _mm256_movemask_pd(_mm256_cmp_pd(v, lowest, _CMP_EQ_OQ));
  return {begin + (lanes ? static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(lanes))) : 0),
          _mm256_cvtsd_f64(lowest)};
}

// One row, either form.
__attribute__((target("avx2"))) inline RowMin ScanRowAvx2Any(const PrefixSums& ps, const double* prev,
                                                             size_t p, size_t begin, size_t end) {
  return end - begin < 4 ? ScanRowAvx2Short(ps, prev, p, begin, end) : ScanRowAvx2(ps, prev, p, begin, end);
}

// The rows of one divide-and-conquer level, which are independent of each other. The short ones
// (at most four candidates) run back to back with no branch between them, so the processor
// overlaps their divisions; a branch per row on its length, taken at random, would make it
// discard that work at each misprediction.
__attribute__((target("avx2"))) inline void ScanRowsAvx2(const PrefixSums& ps, const double* prev,
                                                         const RowRange* shorts, size_t n_short,
                                                         const RowRange* longs, size_t n_long, uint32_t* arg,
                                                         double* cur) {
  for (size_t r = 0; r < n_short; ++r) {
    const RowMin m = ScanRowAvx2Short(ps, prev, shorts[r].p, shorts[r].begin, shorts[r].end);
    arg[shorts[r].p] = uint32_t(m.arg);
    cur[shorts[r].p] = m.value;
  }
  for (size_t r = 0; r < n_long; ++r) {
    const RowMin m = ScanRowAvx2(ps, prev, longs[r].p, longs[r].begin, longs[r].end);
    arg[longs[r].p] = uint32_t(m.arg);
    cur[longs[r].p] = m.value;
  }
}

#endif

}  // namespace palettize::detail
