// Bit allocation through Compress and CompressCheckpoint (issue 14 items 4, 6): the budget is kept,
// the output holds what the report says, no assignment of the candidates that uniform runs report
// is cheaper (exhaustive search), --min-snr takes the fewest bytes, the emitted config reproduces
// the output byte for byte, and bad options or budgets write nothing.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include "alloc/allocate.h"
#include "encode/bit_pack.h"
#include "palettize/checkpoint.h"
#include "palettize/compare.h"
#include "palettize/compress.h"
#include "safetensors/safetensors.h"
#include "safetensors/safetensors_writer.h"
#include "test_util.h"
#include "util/file.h"
#include "util/half.h"

using namespace palettize;
namespace fs = std::filesystem;

namespace {

// kmeans per_tensor; the objective's runs ignore nbits.
OptimizationConfig Config(int nbits) {
  OptimizationConfig c;
  c.global_config = PalettizeConfig();
  c.global_config->nbits = nbits;
  return c;
}

CompressOptions AllocOptions(AllocationObjective objective, double budget, DeploymentTarget target) {
  CompressOptions o;
  o.config = Config(8);
  o.min_target = target;
  o.objective = objective;
  o.budget = budget;
  return o;
}

// One weight's numbers in a uniform run.
struct Point {
  uint64_t bytes = 0;
  double sse = 0, snr_db = 0;
};

// Per allocated weight (by name), per nbits, what a uniform run at that nbits reports; the weight
// kept uncompressed is nbits 0.
using Curves = std::map<std::string, std::map<int, Point>>;

Curves UniformCurves(const std::string& model, const std::vector<std::string>& names,
                     const std::vector<int>& widths, DeploymentTarget target) {
  TempDir tmp;
  const std::string& dir = tmp.path();
  Curves curves;
  for (int nbits : widths) {
    CompressOptions o;
    o.config = Config(nbits);
    o.min_target = target;
    CompressReport r;
    const std::string out = dir + "/uniform" + std::to_string(nbits) + ".mlpackage";
    REQUIRE(Compress(model, out, o, &r).ok());
    for (const WeightReport& w : r.weights) {
      if (std::find(names.begin(), names.end(), w.name) == names.end()) continue;
      curves[w.name][0] = {w.bytes_before, 0, INFINITY};
      // A width that would not shrink the weight is no candidate (compress keeps it as it is).
      if (w.palettized) curves[w.name][nbits] = {w.bytes_after, w.sse, w.snr_db};
    }
  }
  return curves;
}

// The least total sse within `budget` bytes over every assignment of the curves' points.
double ExhaustiveMinimum(const Curves& curves, uint64_t budget) {
  std::vector<std::vector<Point>> options;
  for (const auto& [name, points] : curves) {
    options.emplace_back();
    for (const auto& [nbits, p] : points) options.back().push_back(p);
  }
  double best = std::numeric_limits<double>::infinity();
  std::function<void(size_t, uint64_t, double)> walk = [&](size_t i, uint64_t bytes, double cost) {
    if (bytes > budget) return;
    if (i == options.size()) {
      best = std::min(best, cost);
      return;
    }
    for (const Point& p : options[i]) walk(i + 1, bytes + p.bytes, cost + p.sse);
  };
  walk(0, 0, 0);
  return best;
}

// The allocation's chosen candidate is the report's entry for its weight, and the written package
// holds each weight at that nbits with that error (decompressed by Compare).
void CheckWrittenAsReported(const std::string& input, const std::string& output, const CompressReport& r) {
  REQUIRE(r.allocation);
  CompareReport cmp;
  REQUIRE(Compare(input, output, &cmp).ok());
  std::map<std::string, const WeightComparison*> compared;
  for (const WeightComparison& c : cmp.weights) compared[c.name] = &c;
  uint64_t bytes = 0;
  for (const WeightAllocation& w : r.allocation->weights) {
    INFO(w.name);
    const AllocationCandidate& c = w.candidates.at(size_t(w.chosen));
    bytes += c.bytes;
    const WeightReport* wr = nullptr;
    for (const WeightReport& x : r.weights)
      if (x.name == w.name) wr = &x;
    REQUIRE(wr);
    REQUIRE(compared.count(w.name));
    const WeightComparison& d = *compared[w.name];
    if (c.nbits == 0) {
      CHECK_FALSE(wr->palettized);
      CHECK(wr->reason == "allocation: kept uncompressed");
      CHECK(d.state == WeightState::kUnchanged);
      CHECK(d.sse == 0);
      continue;
    }
    CHECK(wr->palettized);
    CHECK(wr->nbits == c.nbits);
    CHECK(wr->config.nbits == c.nbits);
    CHECK(wr->bytes_after == c.bytes);
    CHECK(wr->sse == c.sse);
    CHECK(wr->snr_db == c.snr_db);
    CHECK(d.state == WeightState::kPalettized);
    CHECK(d.nbits == c.nbits);
    CHECK(d.sse == Approx(c.sse).epsilon(1e-9));
  }
  CHECK(bytes == r.allocation->bytes);
}

double SseSum(const Curves& curves, int nbits, uint64_t* bytes) {
  double sse = 0;
  *bytes = 0;
  for (const auto& [name, points] : curves) {
    const auto it = points.find(nbits);
    const Point& p = it == points.end() ? points.at(0) : it->second;
    sse += p.sse;
    *bytes += p.bytes;
  }
  return sse;
}

std::map<std::string, std::string> FilesUnder(const std::string& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    std::string text;
    REQUIRE(ReadFileToString(e.path().string(), &text).ok());
    files[fs::relative(e.path(), root).string()] = text;
  }
  return files;
}

std::vector<std::string> AllocatedNames(const CompressReport& r) {
  std::vector<std::string> names;
  for (const WeightAllocation& w : r.allocation->weights) names.push_back(w.name);
  return names;
}

}  // namespace

TEST_CASE("Allocation: target_bpw keeps the budget, writes what it reports, and no uniform run is better",
          "[alloc]") {
  TempDir tmp;
  for (const char* name : {"mnist", "keras_video"}) {
    INFO(name);
    const std::string model = SharedModel(name);
    // Names first, from one allocation; then every width's uniform run.
    CompressReport first;
    REQUIRE(Compress(model, tmp.path() + "/" + name + "-first.mlpackage",
                     AllocOptions(AllocationObjective::kTargetBpw, 4, DeploymentTarget::kAuto), &first)
                .ok());
    const Curves curves =
        UniformCurves(model, AllocatedNames(first), {1, 2, 4, 6, 8}, DeploymentTarget::kAuto);
    for (double bpw : {1.5, 3.0, 4.0, 5.0, 7.5}) {
      INFO("bpw " << bpw);
      const std::string out = tmp.path() + "/" + name + "-" + std::to_string(bpw) + ".mlpackage";
      CompressReport r;
      REQUIRE(Compress(model, out,
                       AllocOptions(AllocationObjective::kTargetBpw, bpw, DeploymentTarget::kAuto), &r)
                  .ok());
      REQUIRE(r.allocation);
      const Allocation& a = *r.allocation;
      CHECK(a.objective == AllocationObjective::kTargetBpw);
      CHECK(a.cost == AllocationCost::kSse);
      CHECK(a.bytes <= BudgetBytes(AllocationObjective::kTargetBpw, bpw, a.elements));
      CHECK(a.bpw <= bpw);
      CHECK(a.gap == 0);
      CheckWrittenAsReported(model, out, r);
      // No uniform run at a size within the allocation's budget has a lower total cost.
      for (int nbits : {1, 2, 4, 6, 8}) {
        uint64_t bytes = 0;
        const double sse = SseSum(curves, nbits, &bytes);
        if (bytes <= BudgetBytes(AllocationObjective::kTargetBpw, bpw, a.elements))
          CHECK(a.total_cost <= sse * (1 + 1e-12));
      }
    }
    // At exactly uniform 4-bit's size, the allocation costs no more than uniform 4-bit.
    uint64_t bytes4 = 0;
    const double sse4 = SseSum(curves, 4, &bytes4);
    CompressReport r;
    REQUIRE(Compress(model, tmp.path() + "/" + name + "-size4.mlpackage",
                     AllocOptions(AllocationObjective::kTargetSize, double(bytes4), DeploymentTarget::kAuto),
                     &r)
                .ok());
    CHECK(r.allocation->bytes <= bytes4);
    CHECK(r.allocation->total_cost <= sse4 * (1 + 1e-12));
  }
}

TEST_CASE("Allocation: an exhaustive search over uniform runs' candidates finds no cheaper assignment",
          "[alloc]") {
  TempDir tmp;
  const std::string model = SharedModel("keras_video");
  // iOS18 output: 3-bit candidates too.
  CompressReport first;
  REQUIRE(Compress(model, tmp.path() + "/first.mlpackage",
                   AllocOptions(AllocationObjective::kTargetBpw, 4, DeploymentTarget::kIOS18), &first)
              .ok());
  REQUIRE(first.allocation->weights.size() == 7);
  for (const WeightAllocation& w : first.allocation->weights) CHECK(w.candidates.size() == 7);
  const Curves curves =
      UniformCurves(model, AllocatedNames(first), {1, 2, 3, 4, 6, 8}, DeploymentTarget::kIOS18);
  REQUIRE(curves.size() == 7);
  // The sweep's candidates are the uniform runs' numbers.
  for (const WeightAllocation& w : first.allocation->weights)
    for (const AllocationCandidate& c : w.candidates) {
      const Point& p = curves.at(w.name).at(c.nbits);
      CHECK(c.bytes == p.bytes);
      CHECK(c.sse == p.sse);
    }
  uint64_t smallest = 0, largest = 0;
  for (const auto& [name, points] : curves) {
    uint64_t lo = UINT64_MAX;
    for (const auto& [nbits, p] : points) lo = std::min(lo, p.bytes);
    smallest += lo;
    largest += points.at(0).bytes;
  }
  int n = 0;
  for (double f : {0.0, 0.03, 0.1, 0.2, 0.35, 0.5, 0.8}) {
    const uint64_t budget = smallest + uint64_t(f * double(largest - smallest));
    INFO("budget " << budget);
    CompressReport r;
    REQUIRE(Compress(model, tmp.path() + "/a" + std::to_string(n++) + ".mlpackage",
                     AllocOptions(AllocationObjective::kTargetSize, double(budget), DeploymentTarget::kIOS18),
                     &r)
                .ok());
    CHECK(r.allocation->bytes <= budget);
    CHECK(r.allocation->gap == 0);
    CHECK(r.allocation->total_cost == Approx(ExhaustiveMinimum(curves, budget)).epsilon(1e-12));
  }
}

TEST_CASE("Allocation: min_snr gives every weight the SNR with its fewest bytes", "[alloc]") {
  TempDir tmp;
  const std::string model = SharedModel("keras_video");
  for (double db : {8.0, 20.0, 35.0}) {
    INFO("dB " << db);
    const std::string out = tmp.path() + "/s" + std::to_string(int(db)) + ".mlpackage";
    CompressReport r;
    REQUIRE(Compress(model, out, AllocOptions(AllocationObjective::kMinSnr, db, DeploymentTarget::kAuto), &r)
                .ok());
    CheckWrittenAsReported(model, out, r);
    const Curves curves = UniformCurves(model, AllocatedNames(r), {1, 2, 4, 6, 8}, DeploymentTarget::kAuto);
    for (const WeightAllocation& w : r.allocation->weights) {
      INFO(w.name);
      const AllocationCandidate& c = w.candidates[size_t(w.chosen)];
      CHECK(c.snr_db >= db);
      for (const auto& [nbits, p] : curves.at(w.name))
        if (p.bytes < c.bytes) CHECK(p.snr_db < db);
    }
  }
}

TEST_CASE("Allocation: the emitted config reproduces the package byte for byte; plot; dry run", "[alloc]") {
  TempDir tmp;
  const std::string model = SharedModel("keras_video");
  for (DeploymentTarget target : {DeploymentTarget::kAuto, DeploymentTarget::kIOS18}) {
    const std::string tag = target == DeploymentTarget::kAuto ? "auto" : "ios18";
    INFO(tag);
    CompressOptions o = AllocOptions(AllocationObjective::kTargetBpw, 3.2, target);
    o.config.op_type_configs["linear"] = std::nullopt;  // the base config's other entries stay
    o.emit_config_path = tmp.path() + "/" + tag + ".yaml";
    o.plot_path = tmp.path() + "/" + tag + ".svg";
    o.report_path = tmp.path() + "/" + tag + ".json";
    CompressReport r;
    const std::string out = tmp.path() + "/" + tag + ".mlpackage";
    REQUIRE(Compress(model, out, o, &r).ok());
    CheckWrittenAsReported(model, out, r);
    std::set<int> chosen;
    for (const WeightAllocation& w : r.allocation->weights)
      chosen.insert(w.candidates[size_t(w.chosen)].nbits);
    CHECK(chosen.size() > 1);  // a mixed allocation, not a uniform one in disguise
    std::string svg, json;
    REQUIRE(ReadFileToString(o.plot_path, &svg).ok());
    CHECK(svg.find("<svg") != std::string::npos);
    CHECK(svg.find("circle class=\"chosen\"") != std::string::npos);
    REQUIRE(ReadFileToString(o.report_path, &json).ok());
    CHECK(json.find("\"allocation\"") != std::string::npos);

    CompressOptions again;
    REQUIRE(ReadConfigFile(o.emit_config_path, false, &again.config).ok());
    again.min_target = target;
    CompressReport r2;
    const std::string out2 = tmp.path() + "/" + tag + "-again.mlpackage";
    REQUIRE(Compress(model, out2, again, &r2).ok());
    CHECK(FilesUnder(out) == FilesUnder(out2));
    CHECK(r2.bytes_after == r.bytes_after);
  }

  // A dry run computes the allocation and writes its config and plot, but no model and no report.
  CompressOptions o = AllocOptions(AllocationObjective::kTargetBpw, 3.2, DeploymentTarget::kAuto);
  o.config.op_type_configs["linear"] = std::nullopt;
  o.dry_run = true;
  o.emit_config_path = tmp.path() + "/dry.yaml";
  o.plot_path = tmp.path() + "/dry.svg";
  o.report_path = tmp.path() + "/dry.json";
  CompressReport r;
  REQUIRE(Compress(model, tmp.path() + "/dry.mlpackage", o, &r).ok());
  REQUIRE(r.allocation);
  CHECK_FALSE(fs::exists(tmp.path() + "/dry.mlpackage"));
  CHECK_FALSE(fs::exists(tmp.path() + "/dry.json"));
  std::string dry_yaml, yaml;
  REQUIRE(ReadFileToString(tmp.path() + "/dry.yaml", &dry_yaml).ok());
  REQUIRE(ReadFileToString(tmp.path() + "/auto.yaml", &yaml).ok());
  CHECK(dry_yaml == yaml);
  CHECK(fs::exists(tmp.path() + "/dry.svg"));
  for (const WeightAllocation& w : r.allocation->weights)
    for (const WeightReport& x : r.weights)
      if (x.name == w.name && w.candidates[size_t(w.chosen)].nbits != 0)
        CHECK(x.nbits == w.candidates[size_t(w.chosen)].nbits);
}

TEST_CASE("Allocation: bad budgets and options are one-line errors, and nothing is written", "[alloc]") {
  TempDir tmp;
  const std::string model = SharedModel("mnist");
  const std::string out = tmp.path() + "/o.mlpackage";
  CompressReport r;
  auto error = [&](const CompressOptions& o) {
    const Status st = Compress(model, out, o, &r);
    REQUIRE_FALSE(st.ok());
    CHECK_FALSE(fs::exists(out));
    CHECK(fs::is_empty(tmp.path()));
    return st.message();
  };
  CompressOptions o = AllocOptions(AllocationObjective::kTargetBpw, 0.05, DeploymentTarget::kAuto);
  o.report_path = tmp.path() + "/r.json";
  o.emit_config_path = tmp.path() + "/c.yaml";
  o.plot_path = tmp.path() + "/p.svg";
  const std::string impossible = error(o);
  CHECK(impossible.rfind("target_bpw 0.05: below the smallest reachable ", 0) == 0);
  CHECK(impossible.find("bpw (largest 16.00)") != std::string::npos);

  o.budget = 0;
  CHECK(error(o) == "target_bpw: 0.000000 is not greater than 0");
  o.budget = std::nan("");
  CHECK(error(o) == "target_bpw: nan is not a finite number");
  o.objective = AllocationObjective::kTargetSize;
  o.budget = -5;
  CHECK(error(o) == "target_size: -5.000000 is not greater than 0");
  o.objective = AllocationObjective::kMinSnr;
  o.budget = INFINITY;
  CHECK(error(o) == "min_snr: inf is not a finite number");
  o.objective.reset();
  CHECK(error(o) == "emit_config_path: needs an allocation objective (target_bpw, target_size or min_snr)");
  o.emit_config_path.clear();
  CHECK(error(o) == "plot_path: needs an allocation objective (target_bpw, target_size or min_snr)");

  // The emitted config and the plot obey the path rules: not an input, an output, or each other.
  o = AllocOptions(AllocationObjective::kTargetBpw, 4, DeploymentTarget::kAuto);
  o.emit_config_path = model + "/Manifest.json";
  CHECK(error(o) == model + "/Manifest.json: the emit_config_path file lies inside the input " + model +
                        "; write outside it");
  o.emit_config_path = tmp.path() + "/same";
  o.plot_path = tmp.path() + "/same";
  CHECK(error(o) ==
        tmp.path() + "/same: the plot_path file is the emit_config_path file; write to another path");
  o.plot_path = out + "/p.svg";
  CHECK(error(o).find("lies inside the output") != std::string::npos);
}

namespace {

struct Tensor {
  SafeTensorSpec spec;
  std::string data;
};

// A checkpoint of three module weights of different spreads (so the allocation mixes widths) and
// a bias.
std::string WriteSmallCheckpoint(const std::string& path) {
  std::mt19937 rng(7);
  auto floats = [&](SafeDType dtype, uint64_t n, double spread) {
    std::normal_distribution<double> d(0, spread);
    std::string out;
    for (uint64_t i = 0; i < n; ++i) {
      const double x = d(rng);
      if (dtype == SafeDType::kF32) {
        const float f = float(x);
        out.append(reinterpret_cast<const char*>(&f), 4);
      } else {
        const uint16_t b = dtype == SafeDType::kBF16 ? DoubleToBFloat16Bits(x) : DoubleToHalfBits(x);
        out.append(reinterpret_cast<const char*>(&b), 2);
      }
    }
    return out;
  };
  const std::vector<Tensor> tensors = {
      {{"enc.fc1.weight", SafeDType::kF16, {64, 96}}, floats(SafeDType::kF16, 64 * 96, 1.0)},
      {{"enc.fc1.bias", SafeDType::kF32, {64}}, floats(SafeDType::kF32, 64, 1.0)},
      {{"enc.fc2.weight", SafeDType::kBF16, {96, 64}}, floats(SafeDType::kBF16, 96 * 64, 0.1)},
      {{"head.weight", SafeDType::kF32, {80, 48}}, floats(SafeDType::kF32, 80 * 48, 3.0)},
  };
  std::vector<SafeTensorSpec> specs;
  for (const Tensor& t : tensors) specs.push_back(t.spec);
  std::vector<uint64_t> offsets;
  std::string bytes = SafeTensorsHeader(specs, {}, &offsets);
  for (const Tensor& t : tensors) bytes += t.data;
  REQUIRE(WriteStringToFile(path, bytes).ok());
  return path;
}

// Tensor `name` of `packed` (per_tensor scalar tables) decoded.
std::vector<double> DecodePacked(const SafeTensorsFile& packed, const std::string& name, int* nbits) {
  const SafeTensor& lut = *packed.Find(name + ".lut");
  const SafeTensor& idx = *packed.Find(name + ".indices");
  const uint64_t k = lut.shape[lut.shape.size() - 2];
  *nbits = 0;
  while ((uint64_t(1) << *nbits) < k) ++*nbits;
  const uint64_t n = idx.bytes * 8 / uint64_t(*nbits);
  std::vector<double> out;
  for (uint64_t i = 0; i < n; ++i) out.push_back(lut.At(UnpackBits(idx.data, i, *nbits)));
  return out;
}

}  // namespace

TEST_CASE("Allocation on checkpoints: dense and packed write what the report says; the config round-trips",
          "[alloc]") {
  TempDir tmp;
  const std::string in = WriteSmallCheckpoint(tmp.path() + "/m.safetensors");
  SafeTensorsFile orig;
  REQUIRE(orig.Open(in).ok());
  for (bool packed : {false, true}) {
    const std::string tag = packed ? "packed" : "dense";
    INFO(tag);
    CheckpointOptions o;
    o.packed = packed;
    o.compress = AllocOptions(AllocationObjective::kTargetBpw, 3.5, DeploymentTarget::kAuto);
    o.compress.emit_config_path = tmp.path() + "/" + tag + ".yaml";
    o.compress.plot_path = tmp.path() + "/" + tag + ".svg";
    const std::string out = tmp.path() + "/" + tag + ".safetensors";
    CheckpointReport r;
    REQUIRE(CompressCheckpoint(in, out, o, &r).ok());
    REQUIRE(r.report.allocation);
    const Allocation& a = *r.report.allocation;
    REQUIRE(a.weights.size() == 3);
    CHECK(a.bytes <= BudgetBytes(AllocationObjective::kTargetBpw, 3.5, a.elements));
    std::set<int> widths;
    SafeTensorsFile written;
    REQUIRE(written.Open(out).ok());
    for (size_t i = 0; i < a.weights.size(); ++i) {
      const WeightAllocation& w = a.weights[i];
      INFO(w.name);
      CHECK(w.config_key == w.name.substr(0, w.name.size() - std::string(".weight").size()));
      const AllocationCandidate& c = w.candidates[size_t(w.chosen)];
      widths.insert(c.nbits);
      const WeightReport* wr = nullptr;
      for (const WeightReport& x : r.report.weights)
        if (x.name == w.name) wr = &x;
      REQUIRE(wr);
      REQUIRE(c.nbits != 0);
      CHECK(wr->nbits == c.nbits);
      CHECK(wr->bytes_after == c.bytes);
      CHECK(wr->sse == c.sse);
      // The written values' error is the reported one.
      const SafeTensor& x = *orig.Find(w.name);
      std::vector<double> decoded;
      if (packed) {
        int nbits = 0;
        decoded = DecodePacked(written, w.name, &nbits);
        CHECK(nbits == c.nbits);
        decoded.resize(x.elements);
      } else {
        for (uint64_t e = 0; e < x.elements; ++e) decoded.push_back(written.Find(w.name)->At(e));
      }
      double sse = 0;
      for (uint64_t e = 0; e < x.elements; ++e) sse += (x.At(e) - decoded[e]) * (x.At(e) - decoded[e]);
      CHECK(sse == Approx(c.sse).epsilon(1e-9));
    }
    CHECK(widths.size() > 1);

    CheckpointOptions again;
    again.packed = packed;
    REQUIRE(ReadConfigFile(o.compress.emit_config_path, true, &again.compress.config).ok());
    CheckpointReport r2;
    REQUIRE(CompressCheckpoint(in, tmp.path() + "/" + tag + "-again.safetensors", again, &r2).ok());
    std::string a1, a2;
    REQUIRE(ReadFileToString(out, &a1).ok());
    REQUIRE(ReadFileToString(tmp.path() + "/" + tag + "-again.safetensors", &a2).ok());
    CHECK(a1 == a2);
  }
}

TEST_CASE("Allocation with a sensitivity file minimises the sensitivity-weighted error", "[alloc]") {
  TempDir tmp;
  const std::string in = WriteSmallCheckpoint(tmp.path() + "/m.safetensors");
  SafeTensorsFile orig;
  REQUIRE(orig.Open(in).ok());
  // Per-element sensitivities for two of the three weights, of very different scales.
  std::vector<SafeTensorSpec> specs;
  std::string data;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (const auto& [name, scale] : {std::pair{"enc.fc1.weight", 1e-3f}, std::pair{"head.weight", 1e3f}}) {
    const SafeTensor& t = *orig.Find(name);
    specs.push_back({name, SafeDType::kF32, t.shape});
    for (uint64_t i = 0; i < t.elements; ++i) {
      const float s = scale * u(rng);
      data.append(reinterpret_cast<const char*>(&s), 4);
    }
  }
  std::vector<uint64_t> offsets;
  const std::string sens = tmp.path() + "/s.safetensors";
  REQUIRE(WriteStringToFile(sens, SafeTensorsHeader(specs, {}, &offsets) + data).ok());

  CheckpointOptions o;
  o.compress = AllocOptions(AllocationObjective::kTargetBpw, 3, DeploymentTarget::kAuto);
  o.compress.sensitivity_file = sens;
  CheckpointReport r;
  REQUIRE(CompressCheckpoint(in, tmp.path() + "/o.safetensors", o, &r).ok());
  const Allocation& a = *r.report.allocation;
  CHECK(a.cost == AllocationCost::kSensitivity);
  for (const WeightAllocation& w : a.weights) {
    INFO(w.name);
    const AllocationCandidate& c = w.candidates[size_t(w.chosen)];
    const WeightReport* wr = nullptr;
    for (const WeightReport& x : r.report.weights)
      if (x.name == w.name) wr = &x;
    REQUIRE(wr);
    if (w.name == "enc.fc2.weight") {  // no sensitivity: its plain error
      CHECK(wr->sensitivity.empty());
      CHECK(c.cost == c.sse);
    } else {
      CHECK(wr->sensitivity == w.name);
      CHECK(c.cost == wr->weighted_sse);
      CHECK(c.cost != c.sse);
    }
  }
  // The weight whose errors weigh a million times more gets at least the other's width.
  int fc1 = 0, head = 0;
  for (const WeightAllocation& w : a.weights) {
    if (w.name == "enc.fc1.weight") fc1 = w.candidates[size_t(w.chosen)].nbits;
    if (w.name == "head.weight") head = w.candidates[size_t(w.chosen)].nbits;
  }
  CHECK((head == 0 || head > fc1));
}
