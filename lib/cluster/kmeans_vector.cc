// k-means for vectors: exact deduplication, greedy k-means++ seeding and Hamerly-bounded Lloyd
// (vector_lloyd.h) from several seeds in parallel, on a sample first when the points are many.
//
// There is no exact shortcut above one dimension, so this is the standard heuristic made fast and
// reproducible:
//   - Identical vectors are merged into one weighted point first: that guarantees they never
//     split across centroids and makes k' = min(k, distinct points) well defined. (On float16
//     weights of ~N(0, 0.02) pairs rarely repeat, so this saves little there; on quantized or
//     low-entropy weights it saves most of the work.)
//   - With many points, the restarts run on a stratified sample of kSampleFactor x k points (at
//     least kSampleMin), where seeding and the early iterations are cheap, and only the best of
//     them (least sample error, lowest restart index on ties) is refined on every point. The
//     refinement starts near a local optimum, so it needs few bounded iterations.
//   - Two-dimensional points that a grid coreset (vector_coreset.h) shrinks at least four-fold skip
//     deduplication and the sample: twice the restarts run on the cells, then the best is polished
//     by Lloyd on every point to convergence, settling the cells a boundary cuts (cell_lloyd.h:
//     the cells inside one centroid's region move whole). (On the 4-bit cluster_dim 2 benchmark
//     weights: faster than the sample and full refinement, with a lower error.)
//   - Every restart has its own fixed seed and writes its own slot, so running them in parallel
//     gives the same result for any thread count.
//   - Lloyd stops when an iteration improves the error by at most `tol` of itself (scikit-learn,
//     which coremltools calls, stops on centroid movement below 1e-2 of the data's variance).
#include "cluster/kmeans_vector.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "cluster/cell_lloyd.h"
#include "cluster/nearest_vector.h"
#include "cluster/vector_coreset.h"
#include "cluster/vector_lloyd.h"

namespace palettize {
namespace {

constexpr size_t kSampleFactor = 256;
constexpr size_t kSampleMin = 32768;
// On a grid coreset the restarts are cheap (a few ten thousand cells), so there are
// kCoresetRestartFactor x options.restarts of them; the kFinalists best on the cells are then each
// polished on every point until Lloyd converges, and the least error on the points wins. With 4
// restarts and 2 polishing iterations the 85M benchmark's 4-bit weights ended 0.2% above
// coremltools' error on one weight; 8 restarts polished to convergence are below it on all 72
// (worst 0.9982 of it), and polishing the best two as well (worst 0.9962) cost 40% more time.
constexpr int kCoresetRestartFactor = 2;
constexpr size_t kFinalists = 1;
// The restarts on the cells race: each stops once an iteration improves its error by at most
// kRaceTol of it, and only the kRaceFinalists best go on to the caller's tolerance. Their late
// iterations (a third to a half of each restart's 15-54) are spent on two runs instead of eight.
// On the 85M benchmark's 4-bit weights: 4.17 -> 3.46 s, the worst weight still 0.9982 of
// coremltools' error; 22 of 72 weights' errors rose (at most 0.64%) and 7 fell.
constexpr double kRaceTol = 1e-3;
constexpr size_t kRaceFinalists = 2;

uint64_t Mix(uint64_t x) { return SplitMix64(x).Next(); }

// Merges identical points (compared with ==, so -0 and +0 are one) in order of first occurrence
// through an open-addressing hash: each distinct point's weight is the sum, in input order, of its
// points' `weights` (nullptr: 1 each); group[i] is point i's distinct point.
void Deduplicate(const double* points, const double* weights, size_t n, size_t dim, WeightedPoints* pts,
                 std::vector<uint32_t>* group) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  std::vector<uint32_t> slot(cap, UINT32_MAX);
  pts->dim = dim;
  pts->coords.reserve(n * dim);
  group->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double* p = points + i * dim;
    uint64_t h = 0;
    for (size_t t = 0; t < dim; ++t) {
      const double v = p[t] + 0.0;  // -0 -> +0
      uint64_t bits;
      std::memcpy(&bits, &v, sizeof bits);
      h = Mix(h ^ bits);
    }
    size_t s = size_t(h) & (cap - 1);
    while (slot[s] != UINT32_MAX && !std::equal(p, p + dim, pts->Point(slot[s]))) s = (s + 1) & (cap - 1);
    if (slot[s] == UINT32_MAX) {
      slot[s] = uint32_t(pts->count++);
      for (size_t t = 0; t < dim; ++t) pts->coords.push_back(p[t] + 0.0);
      pts->weights.push_back(0);
    }
    (*group)[i] = slot[s];
    pts->weights[slot[s]] += weights ? weights[i] : 1.0;
  }
}

// Restart seeds spread apart so neighbouring seeds do not share streams.
uint64_t RestartSeed(uint64_t seed, int r) { return seed + 0x632BE59BD9B4E019ull * uint64_t(r + 1); }

// One point from each of `size` equal strata of the points, at a seeded position, weighing its
// stratum's points (its weight x the stratum's size); and every heavy point (weight above the
// mean mass of a stratum) with its own weight, so that sensitivity-weighted problems keep the
// points that must be reproduced (a stratum's heavy pick is left to that rule).
WeightedPoints Sample(const WeightedPoints& pts, size_t size, uint64_t seed) {
  WeightedPoints s;
  s.dim = pts.dim;
  double total = 0;
  for (double w : pts.weights) total += w;
  const double heavy = total / double(size);
  auto take = [&](size_t i, double w) {
    s.coords.insert(s.coords.end(), pts.Point(i), pts.Point(i) + pts.dim);
    s.weights.push_back(w);
    ++s.count;
  };
  for (size_t i = 0; i < pts.count; ++i)
    if (pts.weights[i] > heavy) take(i, pts.weights[i]);
  SplitMix64 rng(seed ^ 0x5A4D504C45ull);
  for (size_t j = 0; j < size; ++j) {
    const size_t begin = j * pts.count / size, end = (j + 1) * pts.count / size;
    const size_t i = begin + size_t(rng.Next() % uint64_t(end - begin));
    if (!(pts.weights[i] > heavy)) take(i, pts.weights[i] * double(end - begin));
  }
  return s;
}

// `restarts` seeded runs on pts (restart r seeded by RestartSeed(seed, r)), each to convergence,
// in parallel.
std::vector<LloydRun> Restarts(const WeightedPoints& pts, size_t k, int restarts,
                               const VectorKMeansOptions& options) {
  const VectorLloyd lloyd(pts, k);
  std::vector<LloydRun> runs(static_cast<size_t>(restarts));
  tbb::parallel_for(0, restarts, [&](int r) {
    runs[size_t(r)] = lloyd.Iterate(lloyd.Seed(RestartSeed(options.seed, r)),
                                    std::max(0, options.max_iterations), options.tol);
  });
  return runs;
}

// The runs' indices, least error first (the lower index on ties).
std::vector<size_t> BestFirst(const std::vector<LloydRun>& runs) {
  std::vector<size_t> order(runs.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return runs[a].weighted_sse < runs[b].weighted_sse; });
  return order;
}

// The best of `restarts` seeded runs (least error, then lowest restart index), sampled first when
// the points are many. k < pts.count.
LloydRun Solve(const WeightedPoints& pts, size_t k, const VectorKMeansOptions& options) {
  const int restarts = std::max(1, options.restarts);
  const double tol = options.tol;
  const int max_iterations = std::max(0, options.max_iterations);
  const size_t sample_size = std::max(kSampleMin, kSampleFactor * k);
  const bool sampled = pts.count > 2 * sample_size;
  const WeightedPoints sample = sampled ? Sample(pts, sample_size, options.seed) : WeightedPoints();
  const WeightedPoints& base = sampled ? sample : pts;
  std::vector<LloydRun> runs = Restarts(base, k, restarts, options);
  size_t best = 0;
  for (size_t r = 1; r < runs.size(); ++r)
    if (runs[r].weighted_sse < runs[best].weighted_sse) best = r;
  if (!sampled) return std::move(runs[best]);
  return VectorLloyd(pts, k).Iterate(std::move(runs[best].centroids), max_iterations, tol);
}

// Labels (nearest centroid, exactly) and the plain error of every input point.
void Label(const double* points, size_t n, size_t dim, VectorClustering* out) {
  const NearestVector nearest(out->centroids.data(), out->centroids.size() / dim, dim);
  out->labels.resize(n);
  out->sse = 0;
  for (size_t i = 0; i < n; ++i) {
    double err;
    out->labels[i] = nearest(points + i * dim, &err);
    out->sse += err;
  }
}

}  // namespace

VectorClustering VectorKMeans(const double* points, size_t n, size_t dim, size_t k,
                              const VectorKMeansOptions& options) {
  VectorClustering out;
  if (n == 0 || dim == 0 || k == 0) return out;
  if (dim == 2) {
    WeightedPoints cells;
    CoresetIndex index;
    if (GridCoreset2(points, n, n / 4, &cells, &index) && cells.count > k) {
      const int max_iterations = std::max(0, options.max_iterations);
      VectorKMeansOptions race = options;
      race.tol = std::max(options.tol, kRaceTol);
      std::vector<LloydRun> runs =
          Restarts(cells, k, kCoresetRestartFactor * std::max(1, options.restarts), race);
      std::vector<size_t> order = BestFirst(runs);
      if (race.tol > options.tol) {
        const VectorLloyd on_cells(cells, k);
        std::vector<LloydRun> finished(std::min(order.size(), kRaceFinalists));
        tbb::parallel_for(size_t(0), finished.size(), [&](size_t f) {
          finished[f] = on_cells.Iterate(std::move(runs[order[f]].centroids), max_iterations, options.tol);
        });
        runs = std::move(finished);
        order = BestFirst(runs);
      }
      // Each finalist polished on every point, cell by cell (VectorLloyd's way when a cluster
      // would empty); the least error wins, the earlier on ties.
      std::vector<LloydRun> polished(std::min(order.size(), kFinalists));
      tbb::parallel_for(size_t(0), polished.size(), [&](size_t f) {
        const std::vector<double>& start = runs[order[f]].centroids;
        if (!CellLloyd(points, n, index, start, k, max_iterations, options.tol, &polished[f]))
          polished[f] =
              VectorLloyd(PointsView{points, nullptr, n, dim}, k).Iterate(start, max_iterations, options.tol);
      });
      size_t best = 0;
      for (size_t f = 1; f < polished.size(); ++f)
        if (polished[f].weighted_sse < polished[best].weighted_sse) best = f;
      out.centroids = std::move(polished[best].centroids);
      if (options.labels) Label(points, n, dim, &out);
      return out;
    }
  }
  WeightedPoints pts;
  std::vector<uint32_t> group;
  Deduplicate(points, nullptr, n, dim, &pts, &group);
  if (k >= pts.count) {
    out.centroids = pts.coords;
    out.labels.resize(n);
    for (size_t i = 0; i < n; ++i) out.labels[i] = group[i];  // error 0: sse stays 0
    return out;
  }
  out.centroids = Solve(pts, k, options).centroids;
  if (options.labels) Label(points, n, dim, &out);
  return out;
}

VectorClustering WeightedVectorKMeans(const double* points, const double* weights, size_t n, size_t dim,
                                      size_t k, const VectorKMeansOptions& options) {
  VectorClustering out;
  if (n == 0 || dim == 0 || k == 0) return out;
  // Every point weighted alike: the plain clustering is the weighted one (a common factor).
  if (std::all_of(weights, weights + n, [&](double w) { return w == weights[0]; })) {
    VectorKMeansOptions labelled = options;
    labelled.labels = true;
    out = VectorKMeans(points, n, dim, k, labelled);
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
      // Candidates, the first of least weighted error kept: the plain clustering as it is, the
      // plain one refined on the weighted objective, and weighted runs of their own.
      VectorKMeansOptions unlabelled = options;
      unlabelled.labels = false;
      const std::vector<double> plain = VectorKMeans(points, n, dim, k, unlabelled).centroids;
      const NearestVector nearest(plain.data(), k, dim);
      double best_error = 0;
      for (size_t i = 0; i < pts.count; ++i) {
        double err;
        nearest(pts.Point(i), &err);
        best_error += pts.weights[i] * err;
      }
      out.centroids = plain;
      auto consider = [&](LloydRun run) {
        if (run.weighted_sse < best_error) {
          best_error = run.weighted_sse;
          out.centroids = std::move(run.centroids);
        }
      };
      consider(VectorLloyd(pts, k).Iterate(plain, std::max(0, options.max_iterations), options.tol));
      consider(Solve(pts, k, options));
    }
    Label(points, n, dim, &out);
  }
  out.weighted_sse = 0;
  for (size_t i = 0; i < n; ++i) {
    double e = 0;
    for (size_t t = 0; t < dim; ++t) {
      const double d = points[i * dim + t] - out.centroids[out.labels[i] * dim + t];
      e += d * d;
    }
    out.weighted_sse += weights[i] * e;
  }
  return out;
}

}  // namespace palettize
