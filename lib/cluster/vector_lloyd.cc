// Greedy k-means++ and Hamerly-bounded Lloyd (vector_lloyd.h).
//
// Hamerly's bounds, per point i with label a_i: u_i >= d(p_i, c_{a_i}) and l_i <= the distance to
// every other centroid. When centroids move by drift_c, u_i grows by drift_{a_i} and l_i shrinks
// by the largest drift of the others; a point whose u_i <= max(l_i, s_{a_i}) (s_c: half the
// distance from c to its nearest other centroid) keeps its label without computing a distance.
// After the first iterations nearly every point is skipped, so an iteration costs about one pass
// over the labels. Cluster sums are kept up to date as labels change, so the means cost O(k).
// With float16 inputs and unit weights those sums are exact (every addend is a multiple of 2^-24
// below 2^16); otherwise they drift by rounding, and the final centroids are recomputed from the
// labels.
#include "cluster/vector_lloyd.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "util/avx2.h"

// 32-byte vector types in functions built for the baseline target draw GCC's ABI note and clang's
// -Wpsabi warning; every such function here is inlined or internal, so no ABI is crossed.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace palettize {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Full scans run eight centroids at a time, one lane each, from centroids transposed and padded
// to a multiple of eight (ct[t * kp + c]; padding at FLT_MAX, whose squared distance is +inf and
// never wins). Each lane keeps its nearest (earliest on ties) and second nearest; the lanes are
// merged at the end. GCC/Clang vector types: per lane the same IEEE operations as scalar code,
// whatever the target's vector width, so the AVX2 copies of the kernels (below, chosen at run
// time) and the baseline ones (two SSE halves) give the same bits. Neither target has FMA, so
// nothing is contracted.
constexpr size_t kLanes = kNearestLanes;
typedef float F4 __attribute__((vector_size(32)));
typedef int32_t I4 __attribute__((vector_size(32)));

#define PALETTIZE_INLINE inline __attribute__((always_inline))
PALETTIZE_INLINE F4 Select(I4 mask, F4 a, F4 b) { return F4((I4(a) & mask) | (I4(b) & ~mask)); }
PALETTIZE_INLINE I4 Select(I4 mask, I4 a, I4 b) { return (a & mask) | (b & ~mask); }
PALETTIZE_INLINE F4 Load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
PALETTIZE_INLINE F4 Splat(float x) { return F4{} + x; }
// The least of the eight lanes, in every lane (exact: only comparisons).
template <typename V>
PALETTIZE_INLINE V MinLanes(V v) {
  V t = __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
  v = Select(t < v, t, v);
  t = __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
  v = Select(t < v, t, v);
  t = __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
  return Select(t < v, t, v);
}

template <size_t D>
PALETTIZE_INLINE void NearestTwoT(const float* x, const float* ct, size_t kp, size_t dim, uint32_t* best,
                                  float* best_d2, float* second_d2) {
  const size_t nd = D ? D : dim;
  F4 m1 = Splat(kInf), m2 = Splat(kInf);
  I4 id = {}, index = {0, 1, 2, 3, 4, 5, 6, 7};
  for (size_t c = 0; c < kp; c += kLanes, index += int32_t(kLanes)) {
    F4 d = Splat(0);
    for (size_t t = 0; t < nd; ++t) {
      const F4 diff = Splat(x[t]) - Load4(ct + t * kp + c);
      d += diff * diff;
    }
    const I4 lt = d < m1;
    m2 = Select(lt, m1, Select(d < m2, d, m2));
    id = Select(lt, index, id);
    m1 = Select(lt, d, m1);
  }
  // The lanes merged without a branch: the least distance, the lowest index among the lanes that
  // hold it, and the least of every other lane's nearest and that lane's second nearest.
  const F4 b1 = MinLanes(m1);
  const I4 at_best = m1 == b1;
  const I4 b_id = MinLanes(Select(at_best, id, I4{} + std::numeric_limits<int32_t>::max()));
  const F4 b2 = MinLanes(Select(at_best & (id == b_id), m2, m1));
  *best = uint32_t(b_id[0]);
  *best_d2 = b1[0];
  *second_d2 = b2[0];
}

template <size_t D>
float Distance2T(const float* a, const float* b, size_t dim) {
  const size_t nd = D ? D : dim;
  float s = 0;
  for (size_t t = 0; t < nd; ++t) {
    const float d = a[t] - b[t];
    s += d * d;
  }
  return s;
}

// One greedy k-means++ trial: trial[i] = min(closest[i], |p_i - y|^2) and sum_i w_i trial[i],
// summed in four float lanes in a fixed order. pts is transposed: pts[t * n4 + i], n4 = n
// rounded up to 4, the padding at FLT_MAX with weight 0.
template <size_t D>
PALETTIZE_INLINE double TrialT(const float* pts, size_t n4, size_t dim, const float* y, const float* closest,
                               const float* w, float* trial) {
  const size_t nd = D ? D : dim;
  F4 acc = Splat(0);
  for (size_t i = 0; i < n4; i += kLanes) {
    F4 d = Splat(0);
    for (size_t t = 0; t < nd; ++t) {
      const F4 diff = Load4(pts + t * n4 + i) - Splat(y[t]);
      d += diff * diff;
    }
    const F4 c = Load4(closest + i);
    const F4 m = Select(d < c, d, c);
    std::memcpy(trial + i, &m, sizeof m);
    acc += Load4(w + i) * m;
  }
  double potential = 0;
  for (size_t j = 0; j < kLanes; ++j) potential += double(acc[j]);
  return potential;
}

float Distance2(const float* a, const float* b, size_t dim) { return Distance2T<0>(a, b, dim); }

double Distance2(const double* a, const double* b, size_t dim) {
  double s = 0;
  for (size_t t = 0; t < dim; ++t) {
    const double d = a[t] - b[t];
    s += d * d;
  }
  return s;
}

using TrialFn = double (*)(const float*, size_t, size_t, const float*, const float*, const float*, float*);

// The kernels as functions: baseline, and (x86-64) AVX2 copies of the same code.
template <size_t D>
void NearestTwoBase(const float* x, const float* ct, size_t kp, size_t dim, uint32_t* best, float* best_d2,
                    float* second_d2) {
  NearestTwoT<D>(x, ct, kp, dim, best, best_d2, second_d2);
}
template <size_t D>
double TrialBase(const float* pts, size_t n4, size_t dim, const float* y, const float* closest,
                 const float* w, float* trial) {
  return TrialT<D>(pts, n4, dim, y, closest, w, trial);
}
#if PALETTIZE_AVX2
template <size_t D>
__attribute__((target("avx2"))) void NearestTwoAvx2(const float* x, const float* ct, size_t kp, size_t dim,
                                                    uint32_t* best, float* best_d2, float* second_d2) {
  NearestTwoT<D>(x, ct, kp, dim, best, best_d2, second_d2);
}
template <size_t D>
__attribute__((target("avx2"))) double TrialAvx2(const float* pts, size_t n4, size_t dim, const float* y,
                                                 const float* closest, const float* w, float* trial) {
  return TrialT<D>(pts, n4, dim, y, closest, w, trial);
}
#endif

TrialFn TrialFor(size_t dim) {
#if PALETTIZE_AVX2
  if (HasAvx2())
    return dim == 2 ? TrialAvx2<2> : dim == 4 ? TrialAvx2<4> : dim == 8 ? TrialAvx2<8> : TrialAvx2<0>;
#endif
  return dim == 2 ? TrialBase<2> : dim == 4 ? TrialBase<4> : dim == 8 ? TrialBase<8> : TrialBase<0>;
}

}  // namespace

NearestTwoFn NearestTwoFor(size_t dim) {
#if PALETTIZE_AVX2
  if (HasAvx2())
    return dim == 2   ? NearestTwoAvx2<2>
           : dim == 4 ? NearestTwoAvx2<4>
           : dim == 8 ? NearestTwoAvx2<8>
                      : NearestTwoAvx2<0>;
#endif
  return dim == 2   ? NearestTwoBase<2>
         : dim == 4 ? NearestTwoBase<4>
         : dim == 8 ? NearestTwoBase<8>
                    : NearestTwoBase<0>;
}

VectorLloyd::VectorLloyd(const PointsView& pts, size_t k)
    : pts_(pts), k_(k), fcoords_(pts.coords, pts.coords + pts.count * pts.dim) {}

std::vector<double> VectorLloyd::Seed(uint64_t seed, size_t trials) const {
  const size_t n = pts_.count, dim = pts_.dim;
  if (trials == 0) trials = 2 + size_t(std::log(double(k_)));
  SplitMix64 rng(seed);
  const TrialFn trial_fn = TrialFor(dim);
  std::vector<double> centroids(k_ * dim);
  std::vector<char> chosen(n, 0);
  // Transposed and padded to a multiple of 4 (far away, weight 0, closest 0) for TrialT.
  const size_t n4 = (n + kLanes - 1) / kLanes * kLanes;
  std::vector<float> soa(dim * n4, std::numeric_limits<float>::max()), wf(n4, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    for (size_t t = 0; t < dim; ++t) soa[t * n4 + i] = fcoords_[i * dim + t];
    wf[i] = float(pts_.weight(i));
  }
  std::vector<float> closest(n4, 0.0f), trial(n4), best_trial(n4);

  // Draws `count` points with probability mass[i] / total: blocks of kBlock points summed first
  // (four float lanes, in double across lanes), then the targets, sorted, walk the blocks and
  // the points of the block they fall in. picks[] keeps the draw order.
  constexpr size_t kBlock = 64;
  std::vector<float> mass(n4, 0.0f);
  std::vector<double> block((n4 + kBlock - 1) / kBlock);
  std::vector<std::pair<double, size_t>> targets;
  std::vector<size_t> picks;
  auto draw = [&](size_t count) {
    double total = 0;
    for (size_t b = 0; b < block.size(); ++b) {
      F4 acc = Splat(0);
      for (size_t i = b * kBlock; i < std::min(n4, (b + 1) * kBlock); i += kLanes) acc += Load4(&mass[i]);
      block[b] = 0;
      for (size_t j = 0; j < kLanes; ++j) block[b] += double(acc[j]);
      total += block[b];
    }
    targets.clear();
    for (size_t t = 0; t < count; ++t) targets.push_back({rng.NextDouble() * total, t});
    std::sort(targets.begin(), targets.end());
    picks.assign(count, n);
    double acc = 0;
    size_t b = 0;
    for (const auto& [target, slot] : targets) {
      while (b + 1 < block.size() && acc + block[b] <= target) acc += block[b++];
      // Within the block: the first point whose running mass passes the target, else its last
      // point of positive mass (rounding between the two sums).
      double run = acc;
      size_t last = n;
      for (size_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
        if (!(mass[i] > 0)) continue;
        last = i;
        run += double(mass[i]);
        if (run > target) break;
      }
      picks[slot] = last;
    }
    for (size_t& p : picks)
      if (p == n || chosen[p]) {
        // No positive mass (distinct points whose float distances round to 0): the first
        // unchosen point keeps the centroids distinct.
        p = size_t(std::find(chosen.begin(), chosen.end(), 0) - chosen.begin());
      }
  };

  for (size_t i = 0; i < n; ++i) mass[i] = wf[i];
  draw(1);
  const size_t first = picks[0];
  chosen[first] = 1;
  std::copy(pts_.Point(first), pts_.Point(first) + dim, centroids.begin());
  for (size_t i = 0; i < n; ++i) {
    closest[i] = Distance2(&fcoords_[i * dim], &fcoords_[first * dim], dim);
    mass[i] = wf[i] * closest[i];
  }
  for (size_t c = 1; c < k_; ++c) {
    draw(trials);
    size_t best = n;
    double best_potential = std::numeric_limits<double>::infinity();
    for (size_t cand : picks) {
      if (cand == best) continue;
      const double potential =
          trial_fn(soa.data(), n4, dim, &fcoords_[cand * dim], closest.data(), wf.data(), trial.data());
      if (potential < best_potential) {
        best_potential = potential;
        best = cand;
        best_trial.swap(trial);
      }
    }
    if (best == n) {
      // Every candidate's potential was infinite or NaN (values near the float range, as a damaged
      // weight file gives): take the first draw rather than index past the points.
      best = !picks.empty() && picks.front() < n ? picks.front() : 0;
      trial_fn(soa.data(), n4, dim, &fcoords_[best * dim], closest.data(), wf.data(), best_trial.data());
    }
    chosen[best] = 1;
    std::copy(pts_.Point(best), pts_.Point(best) + dim, centroids.begin() + c * dim);
    closest.swap(best_trial);
    for (size_t i = 0; i < n4; i += kLanes) {
      const F4 m = Load4(&wf[i]) * Load4(&closest[i]);
      std::memcpy(&mass[i], &m, sizeof m);
    }
  }
  return centroids;
}

LloydRun VectorLloyd::Iterate(std::vector<double> centroids, int max_iterations, double tol) const {
  const size_t n = pts_.count, dim = pts_.dim, k = k_;
  LloydRun run;
  run.centroids = std::move(centroids);
  std::vector<uint32_t>& a = run.labels;
  a.assign(n, 0);
  const size_t kp = (k + kLanes - 1) / kLanes * kLanes;
  const NearestTwoFn nearest_two = NearestTwoFor(dim);
  std::vector<float> u(n), l(n), fc(k * dim), ct(kp * dim, std::numeric_limits<float>::max()), drift(k), s(k);
  std::vector<double> sums(k * dim, 0.0), mass(k, 0.0), fresh(k * dim);
  std::vector<size_t> members(k, 0);
  std::vector<uint32_t> failing(n);  // the points whose bounds fail, one iteration's
  auto load = [&] {
    for (size_t c = 0; c < k; ++c)
      for (size_t t = 0; t < dim; ++t) {
        fc[c * dim + t] = float(run.centroids[c * dim + t]);
        ct[t * kp + c] = fc[c * dim + t];
      }
  };
  auto add = [&](size_t i, uint32_t c, double sign) {
    const double w = sign * pts_.weight(i);
    const double* p = pts_.Point(i);
    for (size_t t = 0; t < dim; ++t) sums[c * dim + t] += w * p[t];
    mass[c] += w;
    members[c] = sign > 0 ? members[c] + 1 : members[c] - 1;
  };

  load();
  double signal = 0;
  for (size_t i = 0; i < n; ++i) {
    const double* p = pts_.Point(i);
    double q = 0;
    for (size_t t = 0; t < dim; ++t) q += p[t] * p[t];
    signal += pts_.weight(i) * q;
    uint32_t best;
    float b1, b2;
    nearest_two(&fcoords_[i * dim], ct.data(), kp, dim, &best, &b1, &b2);
    a[i] = best;
    u[i] = std::sqrt(b1);
    l[i] = std::sqrt(b2);
    add(i, best, 1);
  }

  double previous = std::numeric_limits<double>::infinity();
  for (int it = 0;; ++it) {
    // An empty cluster takes the point farthest from its centroid (the largest single error),
    // from a cluster that keeps another point.
    for (size_t c = 0; c < k; ++c) {
      if (members[c] != 0) continue;
      size_t far = n;
      double far_d2 = -1;
      for (size_t i = 0; i < n; ++i) {
        if (members[a[i]] < 2) continue;
        const double d = Distance2(pts_.Point(i), &run.centroids[a[i] * dim], dim);
        if (d > far_d2) far_d2 = d, far = i;
      }
      if (far == n) break;  // cannot happen while k <= count
      add(far, a[far], -1);
      add(far, uint32_t(c), 1);
      a[far] = uint32_t(c);
      u[far] = l[far] = 0;  // re-examined next pass
    }
    // The means of the current labels, and the error they give: sum w|p|^2 - sum mass |mean|^2.
    double explained = 0;
    for (size_t c = 0; c < k; ++c) {
      if (!(mass[c] > 0)) {
        std::copy_n(&run.centroids[c * dim], dim, &fresh[c * dim]);
        continue;
      }
      double q = 0;
      for (size_t t = 0; t < dim; ++t) {
        fresh[c * dim + t] = sums[c * dim + t] / mass[c];
        q += sums[c * dim + t] * fresh[c * dim + t];
      }
      explained += q;
    }
    const double sse = signal - explained;
    run.iterations = it;
    const bool stalled = it > 0 && previous - sse <= tol * previous;
    float top = 0, next_top = 0;
    size_t top_c = 0;
    for (size_t c = 0; c < k; ++c) {
      drift[c] = float(std::sqrt(Distance2(&fresh[c * dim], &run.centroids[c * dim], dim)));
      if (drift[c] > top) {
        next_top = top;
        top = drift[c];
        top_c = c;
      } else if (drift[c] > next_top) {
        next_top = drift[c];
      }
    }
    run.centroids.swap(fresh);
    if (it >= max_iterations || stalled) break;
    previous = sse;
    load();
    // Half the distance to the nearest other centroid: the second nearest of all, as c itself is at
    // 0 (a duplicate of c is too, and then both are right: 0).
    for (size_t c = 0; c < k; ++c) {
      uint32_t self;
      float zero, nearest;
      nearest_two(&fc[c * dim], ct.data(), kp, dim, &self, &zero, &nearest);
      s[c] = 0.5f * std::sqrt(nearest);
    }
    // The bounds of every point first, with no branch: the points whose test fails are listed
    // (they are a few in ten, at random, so a branch per point mispredicted often), then examined
    // in order, as the one loop did.
    size_t listed = 0;
    {
      float* const up = u.data();
      float* const lp = l.data();
      const uint32_t* const ap = a.data();
      const float* const dp = drift.data();
      const float* const sp = s.data();
      uint32_t* const lp_out = failing.data();
      for (size_t i = 0; i < n; ++i) {
        const uint32_t ai = ap[i];
        const float ui = up[i] + dp[ai];
        const float li = lp[i] - (ai == top_c ? next_top : top);
        up[i] = ui;
        lp[i] = li;
        lp_out[listed] = uint32_t(i);
        listed += !(ui <= std::max(sp[ai], li));
      }
    }
    size_t changed = 0;
    for (size_t q = 0; q < listed; ++q) {
      const size_t i = failing[q];
      const uint32_t ai = a[i];
      const float m = std::max(s[ai], l[i]);
      const float* x = &fcoords_[i * dim];
      u[i] = std::sqrt(dim == 2 ? Distance2T<2>(x, &fc[ai * dim], dim) : Distance2(x, &fc[ai * dim], dim));
      if (u[i] <= m) continue;
      uint32_t best;
      float b1, b2;
      nearest_two(x, ct.data(), kp, dim, &best, &b1, &b2);
      u[i] = std::sqrt(b1);
      l[i] = std::sqrt(b2);
      if (best != ai) {
        add(i, ai, -1);
        add(i, best, 1);
        a[i] = best;
        ++changed;
      }
    }
    if (changed == 0) {
      run.iterations = it + 1;
      break;
    }
  }

  // Exact means of the final labels (the running sums may have drifted), and their error.
  std::fill(sums.begin(), sums.end(), 0.0);
  std::fill(mass.begin(), mass.end(), 0.0);
  for (size_t i = 0; i < n; ++i) {
    const double w = pts_.weight(i);
    for (size_t t = 0; t < dim; ++t) sums[a[i] * dim + t] += w * pts_.Point(i)[t];
    mass[a[i]] += w;
  }
  for (size_t c = 0; c < k; ++c)
    if (mass[c] > 0)
      for (size_t t = 0; t < dim; ++t) run.centroids[c * dim + t] = sums[c * dim + t] / mass[c];
  run.weighted_sse = 0;
  for (size_t i = 0; i < n; ++i)
    run.weighted_sse += pts_.weight(i) * Distance2(pts_.Point(i), &run.centroids[a[i] * dim], dim);
  return run;
}

LloydRun VectorLloyd::IterateBest(std::vector<std::vector<double>> starts, int max_iterations,
                                  double tol) const {
  std::vector<LloydRun> runs(starts.size());
  tbb::parallel_for(size_t(0), starts.size(),
                    [&](size_t s) { runs[s] = Iterate(std::move(starts[s]), max_iterations, tol); });
  size_t best = 0;
  for (size_t s = 1; s < runs.size(); ++s)
    if (runs[s].weighted_sse < runs[best].weighted_sse) best = s;
  return std::move(runs[best]);
}

}  // namespace palettize
