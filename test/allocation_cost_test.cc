// Bit allocation's relative cost (CompressOptions::relative_cost): each candidate costs its SSE
// over the weight's mean square, so a weight of small values is not starved of bits as under the
// raw SSE; refused without an objective and with a sensitivity file.
#include <catch2/catch.hpp>

#include <filesystem>
#include <map>
#include <random>

#include "palettize/checkpoint.h"
#include "safetensors/safetensors.h"
#include "safetensors/safetensors_writer.h"
#include "test_util.h"
#include "util/file.h"

using namespace palettize;
namespace fs = std::filesystem;

namespace {

// Two float32 module weights of one shape: "big.weight" N(0, 1) values and "small.weight" the same
// values times 2^-7 (exact in float32), so their relative curves match and their SSEs differ by
// 2^14 at every width.
std::string WriteTwoScales(const std::string& path) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d(0.0f, 1.0f);
  const uint64_t n = 64 * 96;
  std::string big, small;
  for (uint64_t i = 0; i < n; ++i) {
    const float x = d(rng), y = x / 128.0f;
    big.append(reinterpret_cast<const char*>(&x), 4);
    small.append(reinterpret_cast<const char*>(&y), 4);
  }
  const std::vector<SafeTensorSpec> specs = {{"big.weight", SafeDType::kF32, {64, 96}},
                                             {"small.weight", SafeDType::kF32, {64, 96}}};
  std::vector<uint64_t> offsets;
  REQUIRE(WriteStringToFile(path, SafeTensorsHeader(specs, {}, &offsets) + big + small).ok());
  return path;
}

CheckpointOptions AllocAt(double bpw, bool relative) {
  CheckpointOptions o;
  o.compress.config.global_config = PalettizeConfig();
  o.compress.config.global_config->nbits = 8;  // the allocation replaces it
  o.compress.objective = AllocationObjective::kTargetBpw;
  o.compress.budget = bpw;
  o.compress.relative_cost = relative;
  return o;
}

std::map<std::string, int> ChosenBits(const Allocation& a) {
  std::map<std::string, int> bits;
  for (const WeightAllocation& w : a.weights) bits[w.name] = w.candidates[size_t(w.chosen)].nbits;
  return bits;
}

}  // namespace

TEST_CASE("Relative cost: each candidate's cost is its sse times elements over the sum of squares",
          "[alloc]") {
  TempDir tmp;
  const std::string in = WriteTwoScales(tmp.path() + "/m.safetensors");
  SafeTensorsFile orig;
  REQUIRE(orig.Open(in).ok());
  CheckpointReport r;
  const Status st = CompressCheckpoint(in, tmp.path() + "/o.safetensors", AllocAt(4.1, true), &r);
  INFO(st.message());
  REQUIRE(st.ok());
  REQUIRE(r.report.allocation);
  const Allocation& a = *r.report.allocation;
  CHECK(a.cost == AllocationCost::kRelative);
  REQUIRE(a.weights.size() == 2);
  double total = 0;
  for (const WeightAllocation& w : a.weights) {
    INFO(w.name);
    const SafeTensor& t = *orig.Find(w.name);
    double sumsq = 0;
    for (uint64_t e = 0; e < t.elements; ++e) sumsq += t.At(e) * t.At(e);
    REQUIRE(w.candidates.size() >= 5);  // 1, 2, 4, 6, 8 bits and uncompressed
    for (const AllocationCandidate& c : w.candidates) {
      INFO("nbits " << c.nbits);
      if (c.nbits == 0) {
        CHECK(c.cost == 0);
        continue;
      }
      CHECK(c.sse > 0);
      CHECK(c.cost == Approx(c.sse * double(t.elements) / sumsq).epsilon(1e-12));
    }
    total += w.candidates[size_t(w.chosen)].cost;
  }
  CHECK(a.total_cost == Approx(total).epsilon(1e-12));
}

TEST_CASE("Relative cost: weights of different magnitudes get the same bits where sse starves the small one",
          "[alloc]") {
  TempDir tmp;
  const std::string in = WriteTwoScales(tmp.path() + "/m.safetensors");
  // 4.1 bpw: both weights at 4 bits (4.04 bpw with their tables) or one at 6 and the other at 2
  // (4.09) fit; 6 and 4 do not.
  CheckpointReport sse, rel;
  REQUIRE(CompressCheckpoint(in, tmp.path() + "/sse.safetensors", AllocAt(4.1, false), &sse).ok());
  REQUIRE(CompressCheckpoint(in, tmp.path() + "/rel.safetensors", AllocAt(4.1, true), &rel).ok());
  CHECK(sse.report.allocation->cost == AllocationCost::kSse);
  CHECK(rel.report.allocation->cost == AllocationCost::kRelative);
  const std::map<std::string, int> by_sse = ChosenBits(*sse.report.allocation);
  const std::map<std::string, int> by_rel = ChosenBits(*rel.report.allocation);
  CHECK(by_sse.at("big.weight") > by_sse.at("small.weight"));
  CHECK(by_rel.at("big.weight") == by_rel.at("small.weight"));
  CHECK(by_rel.at("big.weight") == 4);
  CHECK(sse.report.allocation->gap == 0);
  CHECK(rel.report.allocation->gap == 0);
  // Each within the budget, and each optimal for its own cost: the other's choice costs at least
  // as much under it.
  for (const CheckpointReport* r : {&sse, &rel}) CHECK(r->report.allocation->bpw <= 4.1);
  auto cost_of = [](const Allocation& a, const std::map<std::string, int>& bits) {
    double total = 0;
    for (const WeightAllocation& w : a.weights)
      for (const AllocationCandidate& c : w.candidates)
        if (c.nbits == bits.at(w.name)) total += c.cost;
    return total;
  };
  CHECK(cost_of(*sse.report.allocation, by_rel) > sse.report.allocation->total_cost);
  CHECK(cost_of(*rel.report.allocation, by_sse) > rel.report.allocation->total_cost);
}

TEST_CASE("Relative cost: refused without an objective and with a sensitivity file, nothing written",
          "[alloc]") {
  TempDir tmp;
  const std::string in = WriteTwoScales(tmp.path() + "/m.safetensors");
  const std::string out = tmp.path() + "/o.safetensors";
  CheckpointOptions o = AllocAt(4, true);
  o.compress.objective.reset();
  CheckpointReport r;
  Status st = CompressCheckpoint(in, out, o, &r);
  CHECK(st.message() == "relative_cost: needs an allocation objective (target_bpw, target_size or min_snr)");
  o = AllocAt(4, true);
  o.compress.sensitivity_file = in;
  st = CompressCheckpoint(in, out, o, &r);
  CHECK(st.message() == "relative_cost: not with sensitivity");
  CHECK_FALSE(fs::exists(out));
}
