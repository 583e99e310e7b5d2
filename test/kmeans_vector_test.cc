// Vector k-means: determinism, deduplication, blob recovery, and the output contract.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include <tbb/global_control.h>

#include "cluster/kmeans_vector.h"

using namespace palettize;

namespace {

double Dist2(const double* a, const double* b, size_t dim) {
  double s = 0;
  for (size_t t = 0; t < dim; ++t) s += (a[t] - b[t]) * (a[t] - b[t]);
  return s;
}

// Labels name a nearest centroid, and sse is the objective they give.
void CheckContract(const std::vector<double>& pts, size_t n, size_t dim, const VectorClustering& r) {
  const size_t k = r.centroids.size() / dim;
  REQUIRE(r.centroids.size() == k * dim);
  REQUIRE(r.labels.size() == n);
  double sse = 0;
  for (size_t i = 0; i < n; ++i) {
    REQUIRE(r.labels[i] < k);
    const double own = Dist2(&pts[i * dim], &r.centroids[r.labels[i] * dim], dim);
    for (size_t c = 0; c < k; ++c)
      REQUIRE(own <= Dist2(&pts[i * dim], &r.centroids[c * dim], dim) * (1 + 1e-12));
    sse += own;
  }
  CHECK(r.sse == Approx(sse).epsilon(1e-12).margin(1e-300));
}

std::vector<double> RandomPoints(std::mt19937_64& rng, size_t n, size_t dim) {
  std::normal_distribution<double> normal(0, 1);
  std::vector<double> p(n * dim);
  for (auto& v : p) v = normal(rng);
  return p;
}

}  // namespace

TEST_CASE("vector k-means is deterministic", "[kmeans_vector]") {
  std::mt19937_64 rng(1);
  const size_t n = 3000, dim = 4, k = 16;
  std::vector<double> pts = RandomPoints(rng, n, dim);
  for (size_t i = 0; i < 500; ++i)  // plenty of exact duplicates too
    std::copy_n(&pts[(rng() % 100) * dim], dim, &pts[(100 + rng() % (n - 100)) * dim]);
  VectorKMeansOptions opt;
  opt.seed = 42;
  const VectorClustering a = VectorKMeans(pts.data(), n, dim, k, opt);
  const VectorClustering b = VectorKMeans(pts.data(), n, dim, k, opt);
  REQUIRE(a.centroids.size() == k * dim);
  REQUIRE(a.labels == b.labels);
  REQUIRE(a.centroids.size() == b.centroids.size());
  CHECK(std::memcmp(a.centroids.data(), b.centroids.data(), a.centroids.size() * 8) == 0);
  CHECK(std::memcmp(&a.sse, &b.sse, sizeof a.sse) == 0);
  CheckContract(pts, n, dim, a);

  // Identical vectors never split.
  std::map<std::vector<double>, uint32_t> seen;
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> key(&pts[i * dim], &pts[i * dim] + dim);
    auto [it, inserted] = seen.emplace(key, a.labels[i]);
    if (!inserted) REQUIRE(it->second == a.labels[i]);
  }
  // A converged run leaves no centroid empty (empty ones are re-seeded).
  std::set<uint32_t> used(a.labels.begin(), a.labels.end());
  CHECK(used.size() == k);
}

TEST_CASE("vector k-means with k >= distinct points is exact", "[kmeans_vector]") {
  const size_t dim = 3;
  const std::vector<double> distinct = {0, 0, 0, 1, 2, 3, -1, 0.5, 7, 1, 2, 3.0000001};
  std::vector<double> pts;
  std::mt19937_64 rng(3);
  const size_t n = 40;
  for (size_t i = 0; i < n; ++i) {
    const size_t d = rng() % 4;
    pts.insert(pts.end(), distinct.begin() + d * dim, distinct.begin() + (d + 1) * dim);
  }
  for (size_t k : {4, 5, 100}) {
    const VectorClustering r = VectorKMeans(pts.data(), n, dim, k, {});
    CHECK(r.centroids.size() == 4 * dim);  // k' = number of distinct points
    CHECK(r.sse == 0);
    for (size_t i = 0; i < n; ++i)
      REQUIRE(std::equal(&pts[i * dim], &pts[i * dim] + dim, &r.centroids[r.labels[i] * dim]));
  }
  // Just enough clusters: the nearly identical pair must still be separated.
  const VectorClustering r3 = VectorKMeans(pts.data(), n, dim, 3, {});
  CHECK(r3.centroids.size() == 3 * dim);
  CheckContract(pts, n, dim, r3);
}

TEST_CASE("vector k-means recovers well-separated blobs", "[kmeans_vector]") {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> normal(0, 0.05);
  const size_t dim = 2, blobs = 6, per = 150, n = blobs * per;
  std::vector<double> pts;
  std::vector<size_t> truth;
  for (size_t b = 0; b < blobs; ++b) {
    const double cx = 10.0 * double(b % 3), cy = 10.0 * double(b / 3);
    for (size_t i = 0; i < per; ++i) {
      pts.push_back(cx + normal(rng));
      pts.push_back(cy + normal(rng));
      truth.push_back(b);
    }
  }
  // Shuffle so blobs are not in input order.
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<double> shuffled(n * dim);
  std::vector<size_t> shuffled_truth(n);
  for (size_t i = 0; i < n; ++i) {
    std::copy_n(&pts[perm[i] * dim], dim, &shuffled[i * dim]);
    shuffled_truth[i] = truth[perm[i]];
  }
  for (uint64_t seed : {0ull, 1ull, 77ull}) {
    VectorKMeansOptions opt;
    opt.seed = seed;
    const VectorClustering r = VectorKMeans(shuffled.data(), n, dim, blobs, opt);
    CheckContract(shuffled, n, dim, r);
    // The labeling equals the truth up to renaming: a bijection between labels and blobs.
    std::map<uint32_t, size_t> label_to_blob;
    std::map<size_t, uint32_t> blob_to_label;
    for (size_t i = 0; i < n; ++i) {
      auto a = label_to_blob.emplace(r.labels[i], shuffled_truth[i]).first;
      auto b = blob_to_label.emplace(shuffled_truth[i], r.labels[i]).first;
      REQUIRE(a->second == shuffled_truth[i]);
      REQUIRE(b->second == r.labels[i]);
    }
    CHECK(label_to_blob.size() == blobs);
    // And the centroids sit at the blob means.
    for (auto [label, blob] : label_to_blob) {
      CHECK(r.centroids[label * dim] == Approx(10.0 * double(blob % 3)).margin(0.02));
      CHECK(r.centroids[label * dim + 1] == Approx(10.0 * double(blob / 3)).margin(0.02));
    }
  }
}

TEST_CASE("vector k-means output contract on random data", "[kmeans_vector]") {
  std::mt19937_64 rng(8);
  for (size_t trial = 0; trial < 10; ++trial) {
    const size_t dim = 1 + rng() % 6, n = 1 + rng() % 400, k = 1 + rng() % 20;
    std::vector<double> pts = RandomPoints(rng, n, dim);
    VectorKMeansOptions opt;
    opt.seed = trial;
    opt.restarts = 1 + int(trial % 3);
    const VectorClustering r = VectorKMeans(pts.data(), n, dim, k, opt);
    INFO("n=" << n << " dim=" << dim << " k=" << k);
    REQUIRE(r.centroids.size() == std::min(n, k) * dim);
    CheckContract(pts, n, dim, r);
    if (k == 1) {
      for (size_t t = 0; t < dim; ++t) {
        double mean = 0;
        for (size_t i = 0; i < n; ++i) mean += pts[i * dim + t];
        CHECK(r.centroids[t] == Approx(mean / double(n)).margin(1e-12));
      }
    }
  }
}

namespace {

// sum_i w_i ||p_i - c(p_i)||^2 for the result's centroids and labels, recomputed here.
double WeightedObjective(const std::vector<double>& pts, const std::vector<double>& w, size_t dim,
                         const VectorClustering& r) {
  double e = 0;
  for (size_t i = 0; i < w.size(); ++i)
    e += w[i] * Dist2(&pts[i * dim], &r.centroids[r.labels[i] * dim], dim);
  return e;
}

// The weighted optimum over every assignment of the n points to at most k clusters, each at its
// weighted mean (weights > 0).
double BruteForce(const std::vector<double>& pts, const std::vector<double>& w, size_t dim, size_t k) {
  const size_t n = w.size();
  size_t total = 1;
  for (size_t i = 0; i < n; ++i) total *= k;
  double best = std::numeric_limits<double>::infinity();
  std::vector<size_t> a(n);
  for (size_t code = 0; code < total; ++code) {
    for (size_t i = 0, c = code; i < n; ++i, c /= k) a[i] = c % k;
    std::vector<double> mass(k, 0), sum(k * dim, 0);
    for (size_t i = 0; i < n; ++i) {
      mass[a[i]] += w[i];
      for (size_t t = 0; t < dim; ++t) sum[a[i] * dim + t] += w[i] * pts[i * dim + t];
    }
    double e = 0;
    for (size_t i = 0; i < n; ++i)
      for (size_t t = 0; t < dim; ++t)
        e += w[i] * std::pow(pts[i * dim + t] - sum[a[i] * dim + t] / mass[a[i]], 2);
    best = std::min(best, e);
  }
  return best;
}

}  // namespace

TEST_CASE("weighted vector k-means: equal weights give exactly the plain clustering", "[kmeans_vector]") {
  std::mt19937_64 rng(21);
  for (double weight : {0.0, 1.0, 3.7, 1e-30}) {
    for (size_t dim : {2, 4}) {
      const size_t n = 400;
      auto pts = RandomPoints(rng, n, dim);
      std::vector<double> w(n, weight);
      VectorKMeansOptions opt;
      opt.seed = 5;
      const VectorClustering plain = VectorKMeans(pts.data(), n, dim, 16, opt);
      const VectorClustering weighted = WeightedVectorKMeans(pts.data(), w.data(), n, dim, 16, opt);
      CHECK(weighted.centroids == plain.centroids);
      CHECK(weighted.labels == plain.labels);
      CHECK(weighted.sse == plain.sse);
      CHECK(weighted.weighted_sse == Approx(weight * plain.sse).epsilon(1e-12).margin(1e-300));
    }
  }
}

TEST_CASE("weighted vector k-means: never worse than plain on the weighted objective", "[kmeans_vector]") {
  std::mt19937_64 rng(22);
  std::exponential_distribution<double> expo(1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int better = 0, cases = 0;
  for (size_t dim : {2, 3, 4}) {
    for (size_t k : {4, 16}) {
      for (int rep = 0; rep < 6; ++rep) {
        const size_t n = 300;
        auto pts = RandomPoints(rng, n, dim);
        // Duplicated points sum their weights; some weights are 0, some large.
        for (size_t i = 0; i < 30; ++i) std::copy_n(&pts[i * dim], dim, &pts[(n - 1 - i) * dim]);
        std::vector<double> w(n);
        for (auto& x : w) x = unit(rng) < 0.1 ? 0.0 : std::pow(expo(rng), 3);
        VectorKMeansOptions opt;
        opt.seed = uint64_t(rep);
        const VectorClustering plain = VectorKMeans(pts.data(), n, dim, k, opt);
        const VectorClustering weighted = WeightedVectorKMeans(pts.data(), w.data(), n, dim, k, opt);
        CheckContract(pts, n, dim, weighted);
        CHECK(weighted.centroids.size() == k * dim);
        const double ew = WeightedObjective(pts, w, dim, weighted),
                     ep = WeightedObjective(pts, w, dim, plain);
        CHECK(weighted.weighted_sse == Approx(ew).epsilon(1e-12));
        CHECK(ew <= ep * (1 + 1e-12));
        better += ew < ep * (1 - 1e-6);
        ++cases;
        // Deterministic: the same call gives the same bits.
        const VectorClustering again = WeightedVectorKMeans(pts.data(), w.data(), n, dim, k, opt);
        CHECK(again.centroids == weighted.centroids);
        CHECK(again.labels == weighted.labels);
      }
    }
  }
  // The weights change the clustering, for the better, in most cases.
  CHECK(better * 4 >= cases * 3);
}

TEST_CASE("weighted vector k-means: heavy vectors are centroids; zero weights leave the problem",
          "[kmeans_vector]") {
  std::mt19937_64 rng(23);
  const size_t n = 500, dim = 4, k = 8;
  auto pts = RandomPoints(rng, n, dim);
  std::vector<double> w(n, 1.0);
  const std::vector<size_t> heavy = {3, 77, 250, 251, 499};
  for (size_t i : heavy) w[i] = 1e15;
  VectorKMeansOptions opt;
  const VectorClustering r = WeightedVectorKMeans(pts.data(), w.data(), n, dim, k, opt);
  for (size_t i : heavy) {
    const double* c = &r.centroids[r.labels[i] * dim];
    for (size_t t = 0; t < dim; ++t) CHECK(std::fabs(c[t] - pts[i * dim + t]) <= 1e-9);
  }
  // Plain k-means does not put a centroid on every heavy vector.
  const VectorClustering plain = VectorKMeans(pts.data(), n, dim, k, opt);
  size_t on = 0;
  for (size_t i : heavy) on += Dist2(&pts[i * dim], &plain.centroids[plain.labels[i] * dim], dim) <= 1e-18;
  CHECK(on < heavy.size());

  // Only 5 points of positive weight (one duplicated): they are the centroids, weighted error 0;
  // the others take their nearest.
  std::vector<double> z(n, 0.0);
  for (size_t i : heavy) z[i] = 2.0;
  std::copy_n(&pts[3 * dim], dim, &pts[10 * dim]);
  z[10] = 1.0;
  const VectorClustering e = WeightedVectorKMeans(pts.data(), z.data(), n, dim, k, opt);
  CHECK(e.centroids.size() == heavy.size() * dim);
  CHECK(e.weighted_sse == 0);
  CheckContract(pts, n, dim, e);
}

// Lloyd's k-means is a local search: its result is a fixed point (every point at its nearest
// centroid, every centroid the weighted mean of its points), not always the global optimum. On tiny
// inputs the optimum is known by brute force: the result is never below it (the objective is
// computed right) and reaches it in most cases (139 of these 150).
TEST_CASE("weighted vector k-means: a local optimum, the brute-force one on most tiny inputs",
          "[kmeans_vector]") {
  std::mt19937_64 rng(24);
  std::exponential_distribution<double> expo(1.0);
  int cases = 0, optimal = 0;
  for (size_t dim : {1, 2, 3}) {
    for (size_t k : {2, 3}) {
      for (int rep = 0; rep < 25; ++rep) {
        const size_t n = 7;
        auto pts = RandomPoints(rng, n, dim);
        std::vector<double> w(n);
        for (auto& x : w) x = std::pow(expo(rng), 2) + 1e-3;
        VectorKMeansOptions opt;
        opt.seed = uint64_t(rep);
        const VectorClustering r = WeightedVectorKMeans(pts.data(), w.data(), n, dim, k, opt);
        INFO("dim " << dim << " k " << k << " rep " << rep);
        CheckContract(pts, n, dim, r);
        // A fixed point of weighted Lloyd.
        for (size_t c = 0; c < k; ++c) {
          double mass = 0;
          std::vector<double> sum(dim, 0);
          for (size_t i = 0; i < n; ++i)
            if (r.labels[i] == c) {
              mass += w[i];
              for (size_t t = 0; t < dim; ++t) sum[t] += w[i] * pts[i * dim + t];
            }
          REQUIRE(mass > 0);
          for (size_t t = 0; t < dim; ++t)
            CHECK(r.centroids[c * dim + t] == Approx(sum[t] / mass).margin(1e-12));
        }
        const double best = BruteForce(pts, w, dim, k);
        CHECK(r.weighted_sse >= best * (1 - 1e-12));
        optimal += r.weighted_sse <= best * (1 + 1e-9);
        ++cases;
      }
    }
  }
  CHECK(cases == 150);
  CHECK(optimal >= 135);
}

TEST_CASE("vector k-means: same result for any thread count, sampled and not", "[kmeans_vector]") {
  std::mt19937_64 rng(31);
  std::student_t_distribution<double> student(4);
  // 80000 points: more than twice the sample, so the restarts run on a sample and the best is
  // refined on every point; 5000: the restarts run on every point.
  for (size_t n : {80000, 5000}) {
    for (size_t dim : {2, 4, 8}) {
      std::vector<double> pts(n * dim);
      for (auto& v : pts) v = double(float(student(rng) * 0.02));
      VectorKMeansOptions opt;
      opt.seed = 9;
      const size_t k = dim == 2 ? 16 : 32;
      VectorClustering one, many;
      {
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 1);
        one = VectorKMeans(pts.data(), n, dim, k, opt);
      }
      {
        tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 4);
        many = VectorKMeans(pts.data(), n, dim, k, opt);
      }
      INFO("n=" << n << " dim=" << dim);
      REQUIRE(one.centroids.size() == k * dim);
      CHECK(std::memcmp(one.centroids.data(), many.centroids.data(), one.centroids.size() * 8) == 0);
      CHECK(one.labels == many.labels);
      CheckContract(pts, n, dim, one);
      CHECK(std::set<uint32_t>(one.labels.begin(), one.labels.end()).size() == k);
      if (n < 65536) {
        // Unsampled, more restarts never give a worse error: the best of a superset of the
        // same seeded runs. (Sampled, the best on the sample need not refine best.)
        VectorKMeansOptions more = opt;
        more.restarts = 8;
        CHECK(VectorKMeans(pts.data(), n, dim, k, more).sse <= one.sse * (1 + 1e-12));
      }
    }
  }
}
