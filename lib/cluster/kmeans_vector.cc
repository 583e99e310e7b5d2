// k-means for vectors: exact deduplication, greedy k-means++ seeding, Lloyd, best of restarts.
//
// There is no exact shortcut above one dimension, so this is the standard heuristic made
// reproducible. Identical vectors are merged into one weighted point first: that is what guarantees
// they never split across centroids, makes k' = min(k, distinct points) well defined, and makes
// every iteration scale with distinct points rather than elements. Randomness comes from our own
// splitmix64 and a 53-bit double, never <random> distributions (their output differs between
// standard libraries), and every sum runs in a fixed order, so a seed gives bit-identical results.
// The weighted variant (kmeans_vector.h) runs the same machinery on points weighted by their
// sensitivities instead of their counts.
#include "cluster/kmeans_vector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace palettize {
namespace {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1) from the top 53 bits.
  double NextDouble() { return double(Next() >> 11) * (1.0 / 9007199254740992.0); }

 private:
  uint64_t state_;
};

double SquaredDistance(const double* a, const double* b, size_t dim) {
  double d2 = 0;
  for (size_t t = 0; t < dim; ++t) {
    const double d = a[t] - b[t];
    d2 += d * d;
  }
  return d2;
}

// Distinct points with multiplicities; every sum below is weighted by them.
struct WeightedPoints {
  size_t count = 0, dim = 0;
  std::vector<double> coords;  // count x dim
  std::vector<double> weights;
  const double* Point(size_t i) const { return &coords[i * dim]; }
};

struct Run {
  std::vector<double> centroids;
  std::vector<uint32_t> labels;  // per distinct point
  double weighted_sse = 0;
};

class Lloyd {
 public:
  Lloyd(const WeightedPoints& pts, size_t k) : pts_(pts), k_(k) {}

  Run Solve(uint64_t seed, int max_iterations) { return Iterate(Seed(seed), max_iterations); }

  // Lloyd iterations from the given k centroids.
  Run Iterate(std::vector<double> centroids, int max_iterations) {
    Run run;
    run.centroids = std::move(centroids);
    run.labels.assign(pts_.count, 0);
    Assign(run.centroids, run.labels);
    for (int it = 0; it < max_iterations; ++it) {
      Update(run.centroids, run.labels);
      if (!Assign(run.centroids, run.labels)) break;
    }
    // Labels are always nearest-centroid here: Assign ran last.
    for (size_t i = 0; i < pts_.count; ++i) {
      run.weighted_sse += pts_.weights[i] *
                          SquaredDistance(pts_.Point(i), &run.centroids[run.labels[i] * pts_.dim], pts_.dim);
    }
    return run;
  }

  // The given centroids as they are: nearest labels and the weighted error they give.
  Run Evaluate(std::vector<double> centroids) const {
    Run run;
    run.centroids = std::move(centroids);
    run.labels.assign(pts_.count, 0);
    Assign(run.centroids, run.labels);
    for (size_t i = 0; i < pts_.count; ++i) {
      run.weighted_sse += pts_.weights[i] *
                          SquaredDistance(pts_.Point(i), &run.centroids[run.labels[i] * pts_.dim], pts_.dim);
    }
    return run;
  }

 private:
  // Greedy k-means++ (several candidates per step, keep the one that lowers the potential most),
  // which is markedly more robust than single-draw k-means++ for the cost of a few more passes.
  std::vector<double> Seed(uint64_t seed) {
    const size_t n = pts_.count, dim = pts_.dim;
    SplitMix64 rng(seed);
    std::vector<double> centroids(k_ * dim);
    std::vector<char> chosen(n, 0);
    const size_t trials = 2 + size_t(std::log(double(k_)));

    // Sample i with probability proportional to mass[i]; `total` is their sum.
    auto sample = [&](const std::vector<double>& mass, double total) -> size_t {
      if (!(total > 0)) {
        // Every mass is zero (all remaining points underflow to distance 0): take the first
        // unchosen point so the centroids stay distinct.
        for (size_t i = 0; i < n; ++i)
          if (!chosen[i]) return i;
        return 0;
      }
      const double target = rng.NextDouble() * total;
      double acc = 0;
      size_t last_positive = 0;
      for (size_t i = 0; i < n; ++i) {
        if (mass[i] <= 0) continue;
        acc += mass[i];
        last_positive = i;
        if (acc > target) return i;
      }
      return last_positive;  // rounding left target at the very end
    };

    const size_t first = sample(pts_.weights, std::accumulate(pts_.weights.begin(), pts_.weights.end(), 0.0));
    chosen[first] = 1;
    std::copy(pts_.Point(first), pts_.Point(first) + dim, centroids.begin());
    std::vector<double> closest(n), mass(n), trial_closest(n), best_closest(n);
    double potential = 0;
    for (size_t i = 0; i < n; ++i) {
      closest[i] = SquaredDistance(pts_.Point(i), pts_.Point(first), dim);
      mass[i] = pts_.weights[i] * closest[i];
      potential += mass[i];
    }
    for (size_t c = 1; c < k_; ++c) {
      size_t best = n;
      double best_potential = std::numeric_limits<double>::infinity();
      for (size_t t = 0; t < trials; ++t) {
        const size_t cand = sample(mass, potential);
        if (chosen[cand]) continue;
        double pot = 0;
        for (size_t i = 0; i < n; ++i) {
          trial_closest[i] = std::min(closest[i], SquaredDistance(pts_.Point(i), pts_.Point(cand), dim));
          pot += pts_.weights[i] * trial_closest[i];
        }
        if (pot < best_potential) {
          best_potential = pot;
          best = cand;
          best_closest.swap(trial_closest);
        }
      }
      if (best == n) {  // every draw hit a chosen point (only possible with zero masses)
        best = sample(std::vector<double>(n, 0.0), 0.0);
        best_potential = 0;
        for (size_t i = 0; i < n; ++i) {
          best_closest[i] = std::min(closest[i], SquaredDistance(pts_.Point(i), pts_.Point(best), dim));
          best_potential += pts_.weights[i] * best_closest[i];
        }
      }
      chosen[best] = 1;
      std::copy(pts_.Point(best), pts_.Point(best) + dim, centroids.begin() + c * dim);
      closest.swap(best_closest);
      potential = best_potential;
      for (size_t i = 0; i < n; ++i) mass[i] = pts_.weights[i] * closest[i];
    }
    return centroids;
  }

  // Nearest centroid for every point (ties to the lower index); returns whether any label changed.
  bool Assign(const std::vector<double>& centroids, std::vector<uint32_t>& labels) const {
    bool changed = false;
    for (size_t i = 0; i < pts_.count; ++i) {
      const double* p = pts_.Point(i);
      uint32_t best = 0;
      double best_d2 = SquaredDistance(p, &centroids[0], pts_.dim);
      for (size_t c = 1; c < k_; ++c) {
        const double d2 = SquaredDistance(p, &centroids[c * pts_.dim], pts_.dim);
        if (d2 < best_d2) {
          best_d2 = d2;
          best = uint32_t(c);
        }
      }
      if (labels[i] != best) {
        labels[i] = best;
        changed = true;
      }
    }
    return changed;
  }

  // Weighted means of the current clusters. An empty cluster takes over the point farthest from
  // its centroid: that point is the largest single contributor to the objective, and moving it
  // keeps k' centroids in use.
  void Update(std::vector<double>& centroids, std::vector<uint32_t>& labels) const {
    const size_t dim = pts_.dim;
    std::vector<size_t> members(k_, 0);
    for (uint32_t l : labels) ++members[l];
    Means(centroids, labels);
    for (size_t c = 0; c < k_; ++c) {
      if (members[c] != 0) continue;
      size_t far = pts_.count;
      double far_d2 = -1;
      for (size_t i = 0; i < pts_.count; ++i) {
        if (members[labels[i]] < 2) continue;  // never empty another cluster
        const double d2 = SquaredDistance(pts_.Point(i), &centroids[labels[i] * dim], dim);
        if (d2 > far_d2) {
          far_d2 = d2;
          far = i;
        }
      }
      if (far == pts_.count) break;  // cannot happen while k' <= distinct points
      --members[labels[far]];
      labels[far] = uint32_t(c);
      members[c] = 1;
      Means(centroids, labels);
    }
  }

  void Means(std::vector<double>& centroids, const std::vector<uint32_t>& labels) const {
    const size_t dim = pts_.dim;
    std::vector<double> sums(k_ * dim, 0.0), mass(k_, 0.0);
    for (size_t i = 0; i < pts_.count; ++i) {
      const double w = pts_.weights[i];
      const double* p = pts_.Point(i);
      double* s = &sums[labels[i] * dim];
      for (size_t t = 0; t < dim; ++t) s[t] += w * p[t];
      mass[labels[i]] += w;
    }
    for (size_t c = 0; c < k_; ++c) {
      if (!(mass[c] > 0)) continue;  // empty: keep the old centroid until it is re-seeded
      for (size_t t = 0; t < dim; ++t) centroids[c * dim + t] = sums[c * dim + t] / mass[c];
    }
  }

  const WeightedPoints& pts_;
  size_t k_;
};

}  // namespace

namespace {

// Sorts point indices lexicographically (index breaks ties, so the order is the same under any
// std::sort) and merges equal runs into `pts`: each distinct point's weight is the sum, in that
// order, of its points' `weights` (nullptr: 1 each). group[i] is point i's distinct point. The
// lowest original index represents a run.
void Deduplicate(const double* points, const double* weights, size_t n, size_t dim, WeightedPoints* pts,
                 std::vector<uint32_t>* group) {
  auto row = [&](size_t i) { return points + i * dim; };
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const double *pa = row(a), *pb = row(b);
    for (size_t t = 0; t < dim; ++t) {
      if (pa[t] < pb[t]) return true;
      if (pb[t] < pa[t]) return false;
    }
    return a < b;
  });
  pts->dim = dim;
  group->resize(n);
  for (size_t s = 0; s < n; ++s) {
    const uint32_t i = order[s];
    if (s == 0 || !std::equal(row(i), row(i) + dim, row(order[s - 1]))) {
      pts->coords.insert(pts->coords.end(), row(i), row(i) + dim);
      pts->weights.push_back(0);
      ++pts->count;
    }
    (*group)[i] = uint32_t(pts->count - 1);
    pts->weights.back() += weights ? weights[i] : 1.0;
  }
}

// Index of the centroid nearest to p (ties to the lower index), as Lloyd::Assign chooses.
uint32_t Nearest(const double* p, const std::vector<double>& centroids, size_t dim) {
  const size_t k = centroids.size() / dim;
  uint32_t best = 0;
  double best_d2 = SquaredDistance(p, &centroids[0], dim);
  for (size_t c = 1; c < k; ++c) {
    const double d2 = SquaredDistance(p, &centroids[c * dim], dim);
    if (d2 < best_d2) {
      best_d2 = d2;
      best = uint32_t(c);
    }
  }
  return best;
}

// Restart seeds spread apart so neighbouring seeds do not share streams.
uint64_t RestartSeed(uint64_t seed, int r) { return seed + 0x632BE59BD9B4E019ull * uint64_t(r + 1); }

}  // namespace

VectorClustering VectorKMeans(const double* points, size_t n, size_t dim, size_t k,
                              const VectorKMeansOptions& options) {
  VectorClustering out;
  if (n == 0 || dim == 0 || k == 0) return out;

  // Deduplicate: identical vectors become one point weighted by their count.
  auto row = [&](size_t i) { return points + i * dim; };
  WeightedPoints pts;
  std::vector<uint32_t> group;
  Deduplicate(points, nullptr, n, dim, &pts, &group);

  std::vector<uint32_t> point_labels;
  if (k >= pts.count) {
    out.centroids = pts.coords;
    point_labels.resize(pts.count);
    std::iota(point_labels.begin(), point_labels.end(), 0u);
  } else {
    Lloyd lloyd(pts, k);
    Run best;
    bool have = false;
    const int restarts = std::max(1, options.restarts);
    for (int r = 0; r < restarts; ++r) {
      Run run = lloyd.Solve(RestartSeed(options.seed, r), std::max(0, options.max_iterations));
      if (!have || run.weighted_sse < best.weighted_sse) {
        best = std::move(run);
        have = true;
      }
    }
    out.centroids = std::move(best.centroids);
    point_labels = std::move(best.labels);
  }

  out.labels.resize(n);
  double sse = 0;
  for (size_t i = 0; i < n; ++i) {
    out.labels[i] = point_labels[group[i]];
    sse += SquaredDistance(row(i), &out.centroids[out.labels[i] * dim], dim);
  }
  out.sse = sse;
  return out;
}

VectorClustering WeightedVectorKMeans(const double* points, const double* weights, size_t n, size_t dim,
                                      size_t k, const VectorKMeansOptions& options) {
  VectorClustering out;
  if (n == 0 || dim == 0 || k == 0) return out;
  auto row = [&](size_t i) { return points + i * dim; };
  // Every point weighted alike: the plain clustering is the weighted one (a common factor).
  if (std::all_of(weights, weights + n, [&](double w) { return w == weights[0]; })) {
    out = VectorKMeans(points, n, dim, k, options);
  } else {
    // Distinct points of positive weight: the weighted problem.
    WeightedPoints all;
    std::vector<uint32_t> group;
    Deduplicate(points, weights, n, dim, &all, &group);
    WeightedPoints pts;
    pts.dim = dim;
    for (size_t i = 0; i < all.count; ++i) {
      if (!(all.weights[i] > 0)) continue;
      pts.coords.insert(pts.coords.end(), all.Point(i), all.Point(i) + dim);
      pts.weights.push_back(all.weights[i]);
      ++pts.count;
    }
    if (k >= pts.count) {
      out.centroids = pts.coords;
    } else {
      const int max_iterations = std::max(0, options.max_iterations);
      Lloyd lloyd(pts, k);
      const VectorClustering plain = VectorKMeans(points, n, dim, k, options);
      Run best = lloyd.Evaluate(plain.centroids);
      auto consider = [&](Run run) {
        if (run.weighted_sse < best.weighted_sse) best = std::move(run);
      };
      consider(lloyd.Iterate(plain.centroids, max_iterations));
      const int restarts = std::max(1, options.restarts);
      for (int r = 0; r < restarts; ++r) consider(lloyd.Solve(RestartSeed(options.seed, r), max_iterations));
      out.centroids = std::move(best.centroids);
    }
    out.labels.resize(n);
    out.sse = 0;
    for (size_t i = 0; i < n; ++i) {
      out.labels[i] = Nearest(row(i), out.centroids, dim);
      out.sse += SquaredDistance(row(i), &out.centroids[out.labels[i] * dim], dim);
    }
  }
  out.weighted_sse = 0;
  for (size_t i = 0; i < n; ++i)
    out.weighted_sse += weights[i] * SquaredDistance(row(i), &out.centroids[out.labels[i] * dim], dim);
  return out;
}

}  // namespace palettize
