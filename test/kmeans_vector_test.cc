// Vector k-means: determinism, deduplication, blob recovery, and the output contract.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "cluster/kmeans_vector.h"

using namespace palettize;

namespace {

double Dist2(const double* a, const double* b, size_t dim) {
  double s = 0;
  for (size_t t = 0; t < dim; ++t) s += (a[t] - b[t]) * (a[t] - b[t]);
  return s;
}

// Labels name a nearest centroid, and sse is the objective they give.
void CheckContract(const std::vector<double>& pts, size_t n, size_t dim,
                   const VectorClustering& r) {
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
