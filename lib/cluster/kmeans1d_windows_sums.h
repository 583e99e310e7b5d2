// The sums of the windowed exact k-means (kmeans1d_windows.cc): its elements' prefix sums, the
// prefix anchors over all values, and the levels' units, each with an AVX2 copy that computes the
// same bits. Values x and weights w are arrays read as doubles (AsDouble). The names are the
// windowed solver's own in palettize::detail (kmeans1d_rows.h's PrefixSums is the pruned DP's).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <utility>
#include <vector>

#include "util/avx2.h"

#if PALETTIZE_AVX2
#include <immintrin.h>
#endif

namespace palettize::detail {

extern std::atomic<bool> kmeans1d_vector_scans;  // kmeans1d.cc; tests compare the scans

// A sequence of elements (atoms, point masses, single values) as prefix sums of w, w*x, w*x^2 (x
// shifted by the weighted mean), each a double-double pair like kmeans1d.cc's.
struct Elements {
  std::vector<double> w{0}, s1{0}, s2{0}, wl{0}, s1l{0}, s2l{0};
  std::vector<size_t> start{0};  // value index where each element starts; start[E] = n
  size_t Count() const { return start.size() - 1; }
  void Reserve(size_t elements) {
    for (auto* v : {&w, &s1, &s2, &wl, &s1l, &s2l}) v->reserve(elements + 1);
    start.reserve(elements + 1);
  }
  static void Add(double& hi, double& lo, double t) {
    const double sum = hi + t, back = sum - hi;
    lo += (hi - (sum - back)) + (t - back);
    hi = sum;
  }
  // Appends an element of sums (W, S1, S2) + (Wl, S1l, S2l) covering values [first, end).
  void Push(double W, double S1, double S2, double Wl, double S1l, double S2l, size_t end) {
    double a = w.back(), b = s1.back(), c = s2.back(), al = wl.back(), bl = s1l.back(), cl = s2l.back();
    Add(a, al, W), Add(b, bl, S1), Add(c, cl, S2);
    w.push_back(a), s1.push_back(b), s2.push_back(c);
    wl.push_back(al + Wl), s1l.push_back(bl + S1l), s2l.push_back(cl + S2l);
    start.push_back(end);
  }
  double Cost(size_t a, size_t b) const {
    if (b <= a) return 0;
    const double W = (w[b] - w[a]) + (wl[b] - wl[a]);
    const double S1 = (s1[b] - s1[a]) + (s1l[b] - s1l[a]);
    const double S2 = (s2[b] - s2[a]) + (s2l[b] - s2l[a]);
    const double c = S2 - S1 * (S1 / W);
    return c > 0 ? c : 0;
  }
};

// Prefix sums of w, w*x, w*x^2 (x shifted by `shift`) in double-double at every kStride-th value:
// the sums over any range [b, e) from two anchors and at most 2 * kStride values. The relaxed
// levels, Lloyd's steps and the exact stage's atoms take their sums from here, so that after the
// one pass that builds it nothing reads all n values again (Lloyd's eight passes over a 27M-value
// float32 tensor were a quarter of its time). AnchorSums holds the sums' arithmetic, Prefix the
// anchors of one array.
struct AnchorSums {
  static constexpr size_t kStride = 512;
  struct Sums {
    double w = 0, wl = 0, s1 = 0, s1l = 0, s2 = 0, s2l = 0;
  };
  // The sums over values [b, e), as hi + lo pairs.
  static Sums Between(const Sums& b, const Sums& e) {
    Sums r;
    Diff(e.w, e.wl, b.w, b.wl, &r.w, &r.wl);
    Diff(e.s1, e.s1l, b.s1, b.s1l, &r.s1, &r.s1l);
    Diff(e.s2, e.s2l, b.s2, b.s2l, &r.s2, &r.s2l);
    return r;
  }
  // The k-means cost of values [b, e) as one cluster (as Elements::Cost computes it) and its mean.
  static double Cost(const Sums& r) {
    const double W = r.w + r.wl, S1 = r.s1 + r.s1l, S2 = r.s2 + r.s2l;
    const double c = S2 - S1 * (S1 / W);
    return c > 0 ? c : 0;
  }
  // (a_hi + a_lo) - (b_hi + b_lo) as a pair: TwoSum of the his, the lo difference added to its error.
  static void Diff(double a, double al, double b, double bl, double* hi, double* lo) {
    const double s = a - b, bb = s - a;
    *hi = s;
    *lo = ((a - (s - bb)) - (b + bb)) + (al - bl);
  }
};

// An array read as doubles. The float32 path's values (float) and counts (uint32_t) convert
// exactly, so every expression below gives the bits it gives on the same numbers as doubles.
template <class T>
struct AsDouble {
  const T* p;
  double operator[](size_t i) const { return double(p[i]); }
};

#if PALETTIZE_AVX2
// Prefix's Extend with the three double-double sums (w, w*x, w*x^2) as lanes of one vector: the
// same operations on each lane in the same order (no FMA), so the same bits, with a third of the
// instructions. t = (w * [1, d, d, 0]) * [1, 1, d, 0] is [w, w d, (w d) d, 0]: times 1 is exact.
template <class X, class W>
__attribute__((target("avx2"))) void ExtendAvx2(X x, W w, double shift, size_t b, size_t e,
                                                AnchorSums::Sums* s) {
  __m256d hi = _mm256_setr_pd(s->w, s->s1, s->s2, 0), lo = _mm256_setr_pd(s->wl, s->s1l, s->s2l, 0);
  const __m256d base = _mm256_setr_pd(1, 1, 1, 0);
  for (size_t i = b; i < e; ++i) {
    const __m256d d = _mm256_set1_pd(x[i] - shift);
    const __m256d t = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(w[i]), _mm256_blend_pd(base, d, 0b0110)),
                                    _mm256_blend_pd(base, d, 0b0100));
    const __m256d sum = _mm256_add_pd(hi, t), back = _mm256_sub_pd(sum, hi);
    lo =
        _mm256_add_pd(lo, _mm256_add_pd(_mm256_sub_pd(hi, _mm256_sub_pd(sum, back)), _mm256_sub_pd(t, back)));
    hi = sum;
  }
  alignas(32) double h[4], l[4];
  _mm256_store_pd(h, hi);
  _mm256_store_pd(l, lo);
  s->w = h[0], s->s1 = h[1], s->s2 = h[2], s->wl = l[0], s->s1l = l[1], s->s2l = l[2];
}

// With `totals` (sw, swx), also sw += w and swx += w x for each value in order: a second vector.
template <class X, class W>
__attribute__((target("avx2"))) void UnitSumsAvx2(X x, W w, size_t b, size_t e, double lo, double* sums,
                                                  double* totals) {
  __m256d acc = _mm256_setzero_pd();
  const __m256d base = _mm256_setr_pd(1, 1, 1, 0);
  __m128d tot = totals ? _mm_loadu_pd(totals) : _mm_setzero_pd();
  for (size_t i = b; i < e; ++i) {
    const double xi = x[i], wi = w[i];
    const __m256d d = _mm256_set1_pd(xi - lo);
    acc =
        _mm256_add_pd(acc, _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(wi), _mm256_blend_pd(base, d, 0b0110)),
                                         _mm256_blend_pd(base, d, 0b0100)));
    if (totals) tot = _mm_add_pd(tot, _mm_mul_pd(_mm_set1_pd(wi), _mm_setr_pd(1, xi)));
  }
  alignas(32) double a[4];
  _mm256_store_pd(a, acc);
  sums[0] = a[0], sums[1] = a[1], sums[2] = a[2];
  if (totals) _mm_storeu_pd(totals, tot);
}
#endif

// The sums of w, w d and w d^2 (d = x - lo) over values [b, e) into sums[0..2], in order: each in
// double, as the plain loop; the AVX2 copy keeps them as three lanes of one vector, with the same
// bits. With `totals` (sw, swx) also sw += w, swx += w x, value by value.
template <class X, class W>
void UnitSums(X x, W w, size_t b, size_t e, double lo, double* sums, double* totals) {
#if PALETTIZE_AVX2
  if (HasAvx2() && kmeans1d_vector_scans) return UnitSumsAvx2(x, w, b, e, lo, sums, totals);
#endif
  double W0 = 0, S1 = 0, S2 = 0;
  for (size_t i = b; i < e; ++i) {
    const double d = x[i] - lo, wd = w[i] * d;
    W0 += w[i], S1 += wd, S2 += wd * d;
    if (totals) totals[0] += w[i], totals[1] += w[i] * x[i];
  }
  sums[0] = W0, sums[1] = S1, sums[2] = S2;
}

// A level's unit: values [b, e) and, for more than one value, the sums of w, w d, w d^2 (d = x - x[b]).
struct Unit {
  size_t b, e;
  double sums[3];
};

// The units of the windows' union `spans`: runs of at most `count` values and value span `span`.
// With `totals`, also the totals of UnitSums over every value of the spans, in order.
template <class X, class W>
void MakeUnits(X x, W w, const std::vector<std::pair<size_t, size_t>>& spans, size_t count, double span,
               std::vector<Unit>* units, double* totals) {
  for (const auto& [a, b] : spans) {
    for (size_t u0 = a; u0 <= b;) {
      // The unit is values [u0, u1): at most `count` of them, up to b, within `span` of x[u0]
      // (x[i] - x[u0] rounds monotonically in i, so a binary search finds where it ends).
      size_t u1 = u0 + 1, end = std::min(b + 1, u0 + count);
      const double first = x[u0];
      while (u1 < end) {
        const size_t mid = u1 + (end - u1) / 2;
        if (x[mid] - first <= span)
          u1 = mid + 1;
        else
          end = mid;
      }
      Unit u{u0, u1, {0, 0, 0}};
      if (u1 - u0 > 1)
        UnitSums(x, w, u0, u1, first, u.sums, totals);
      else if (totals)
        totals[0] += w[u0], totals[1] += w[u0] * first;
      units->push_back(u);
      u0 = u1;
    }
  }
}

template <class X, class W>
class Prefix : public AnchorSums {
 public:
  Prefix(X x, W w, size_t n, double shift) : x_(x), w_(w), n_(n), shift_(shift) {
    anchors_.reserve(n / kStride + 1);
    Sums s;
    for (size_t b = 0; b + kStride <= n; b += kStride) {
      anchors_.push_back(s);
      Extend(b, b + kStride, &s);
    }
    anchors_.push_back(s);
  }
  // The sums over values [0, p).
  Sums At(size_t p) const {
    const size_t a = std::min(p / kStride, anchors_.size() - 1);
    Sums s = anchors_[a];
    Extend(a * kStride, p, &s);
    return s;
  }
  double Mean(const Sums& r) const { return (r.s1 + r.s1l) / (r.w + r.wl) + shift_; }
  double S2Total() const {
    const Sums t = At(n_);
    return t.s2 + t.s2l;
  }

 private:
  void Extend(size_t b, size_t e, Sums* s) const {
#if PALETTIZE_AVX2
    if (avx2_) return ExtendAvx2(x_, w_, shift_, b, e, s);
#endif
    for (size_t i = b; i < e; ++i) {
      const double d = x_[i] - shift_, wd = w_[i] * d;
      Elements::Add(s->w, s->wl, w_[i]), Elements::Add(s->s1, s->s1l, wd),
          Elements::Add(s->s2, s->s2l, wd * d);
    }
  }
  X x_;
  W w_;
  size_t n_;
  double shift_;
#if PALETTIZE_AVX2
  bool avx2_ = HasAvx2() && kmeans1d_vector_scans;
#endif
  std::vector<Sums> anchors_;
};

// Sums of values [b, e) as one element (an atom).
template <class P>
void PushRun(const P& pf, size_t b, size_t e, Elements* el) {
  const AnchorSums::Sums r = AnchorSums::Between(pf.At(b), pf.At(e));
  el->Push(r.w, r.s1, r.s2, r.wl, r.s1l, r.s2l, e);
}

}  // namespace palettize::detail
