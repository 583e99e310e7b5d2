// --emit-config (config/allocation_config.h, config/config_writer.h): an allocation written as a
// config reads back, through the parser and the planner, to the chosen config of every allocated
// weight and to the base config's resolution for every other weight; in both schemas.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "MIL.pb.h"
#include "checkpoint/checkpoint_plan.h"
#include "compress/mil_plan.h"
#include "config/allocation_config.h"
#include "config/config_writer.h"
#include "plan/plan.h"
#include "test_util.h"

using namespace palettize;

namespace {

ConstWeight Weight(const std::string& name, std::vector<uint64_t> dims, std::vector<Consumer> consumers) {
  ConstWeight w;
  w.name = name;
  w.shape = MakeShape(std::move(dims), CoreML::Specification::MILSpec::FLOAT16);
  w.consumers = std::move(consumers);
  return w;
}

// A curve of 2, 4, 6, 8 bits and kept uncompressed (bytes ascending, values only plausible).
std::vector<AllocationCandidate> Curve(uint64_t elements) {
  std::vector<AllocationCandidate> out;
  for (int nbits : {2, 4, 6, 8}) {
    const double sse = std::pow(4.0, -nbits) * double(elements);
    out.push_back({nbits, elements * uint64_t(nbits) / 8 + 64, sse, sse, 10 * std::log10(elements / sse)});
  }
  out.push_back({0, elements * 2, 0, 0, INFINITY});
  return out;
}

// The allocation of every weight planning palettizes, keyed by const name, taking
// candidates[choices[k]] for the k-th of them.
Allocation Allocate(const std::vector<ConstWeight>& weights, const std::vector<WeightPlan>& plans,
                    const std::vector<int>& choices) {
  Allocation a;
  size_t k = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!plans[i].palettize) continue;
    WeightAllocation w;
    w.name = weights[i].name;
    w.config_key = weights[i].name;
    w.config = plans[i].config;
    w.elements = weights[i].shape.elements;
    w.candidates = Curve(w.elements);
    w.chosen = choices.at(k++);
    a.weights.push_back(std::move(w));
  }
  REQUIRE(k == choices.size());
  return a;
}

}  // namespace

TEST_CASE("emit-config: emitted YAML plans every allocated weight at its chosen nbits", "[allocation]") {
  OptimizationConfig base;
  base.global_config = Bits(6);
  base.op_type_configs["linear"] = Bits(8);
  base.op_type_configs["conv"] = std::nullopt;
  base.op_name_configs["mm_op"] = Bits(4);  // a consumer's name: the const's own key must win
  base.op_name_configs["mm_op"]->granularity = Granularity::kPerGroupedChannel;
  base.op_name_configs["mm_op"]->group_size = 16;
  base.op_name_configs["mm_op"]->channel_axis = 1;
  base.op_name_configs["tiny"] = Bits(2);
  base.op_name_configs["tiny"]->weight_threshold = 0;
  const std::vector<ConstWeight> weights = {
      Weight("w_lin", {64, 64}, {{"linear", "lin", "weight", {}}}),
      Weight("w_conv", {64, 64}, {{"conv", "conv1", "weight", {}}}),  // null by type: not allocated
      Weight("w_mm", {64, 64}, {{"matmul", "mm_op", "y", {}}}),
      Weight("w_small", {8, 8}, {{"linear", "lin2", "weight", {}}}),  // under the threshold
      Weight("w_glob", {64, 128}, {{"add", "add1", "y", {}}}),
      Weight("tiny", {4, 8}, {{"add", "add2", "x", {}}}),
  };
  std::vector<WeightPlan> before;
  REQUIRE(PlanMilWeights(weights, base, &before).ok());
  REQUIRE(before[0].palettize);
  REQUIRE(before[2].palettize);
  REQUIRE(before[4].palettize);
  REQUIRE(before[5].palettize);
  REQUIRE_FALSE(before[1].palettize);
  REQUIRE_FALSE(before[3].palettize);

  // w_lin -> 2-bit, w_mm -> 6-bit (keeping its grouped config), w_glob kept, tiny -> 8-bit.
  const Allocation a = Allocate(weights, before, {0, 2, 4, 3});
  std::string yaml;
  REQUIRE(AllocationConfigYaml(a, base, ConfigSchema::kCoreml, &yaml).ok());
  OptimizationConfig read;
  const Status parsed = ParseOptimizationConfig(yaml, "emitted.yaml", &read);
  INFO(yaml);
  REQUIRE(parsed.ok());
  std::vector<WeightPlan> after;
  REQUIRE(PlanMilWeights(weights, read, &after).ok());

  size_t k = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    INFO(weights[i].name);
    if (!before[i].palettize) {  // untouched: the base config's resolution
      CHECK(after[i].palettize == before[i].palettize);
      CHECK(after[i].reason == before[i].reason);
      CHECK(after[i].config_source == before[i].config_source);
      continue;
    }
    const WeightAllocation& w = a.weights[k++];
    const int nbits = w.candidates[size_t(w.chosen)].nbits;
    CHECK(after[i].config_source == "op_name_configs." + weights[i].name);
    if (nbits == 0) {
      CHECK_FALSE(after[i].palettize);
      CHECK(after[i].reason == "skipped by config (op_name_configs." + weights[i].name + " is null)");
      continue;
    }
    PalettizeConfig want = before[i].config;
    want.nbits = nbits;
    REQUIRE(after[i].palettize);
    CHECK(SameConfig(after[i].config, want));
    CHECK(after[i].channel_axis == before[i].channel_axis);
    CHECK(after[i].group_size == before[i].group_size);
  }
  CHECK(after[2].config.granularity == Granularity::kPerGroupedChannel);
  CHECK(after[2].config.nbits == 6);
  // The base's own entries stay.
  REQUIRE(read.op_name_configs.count("mm_op"));
  CHECK(SameConfig(*read.op_name_configs.at("mm_op"), *base.op_name_configs.at("mm_op")));
  CHECK(read.op_type_configs.size() == 2);
  CHECK_FALSE(read.op_type_configs.at("conv").has_value());

  // Deterministic: the same allocation gives the same text.
  std::string again;
  REQUIRE(AllocationConfigYaml(a, base, ConfigSchema::kCoreml, &again).ok());
  CHECK(again == yaml);
}

TEST_CASE("emit-config: the exact text of a small allocation", "[allocation]") {
  Allocation a;
  a.objective = AllocationObjective::kTargetBpw;
  a.budget = 4;
  a.bytes = 600;
  a.elements = 1200;
  a.bpw = 4;
  a.total_cost = 0.5;
  WeightAllocation w;
  w.name = "w";
  w.config_key = "w";
  w.config = Bits(6);
  w.elements = 1200;
  w.candidates = {{4, 600, 0.5, 0.5, 30}, {0, 2400, 0, 0, INFINITY}};
  w.chosen = 0;
  a.weights.push_back(w);
  w.name = w.config_key = "v";
  w.chosen = 1;
  a.weights.push_back(w);
  OptimizationConfig base;
  base.global_config = Bits(6);
  std::string yaml;
  REQUIRE(AllocationConfigYaml(a, base, ConfigSchema::kCoreml, &yaml).ok());
  CHECK(
      yaml ==
      "# palettize bit allocation, --target-bpw 4: 2 weights, 600 bytes, 4.0000 bits per weight, total cost "
      "0.5, gap 0\n"
      "config_type: OpPalettizerConfig\n"
      "global_config:\n"
      "  mode: kmeans\n  nbits: 6\n  granularity: per_tensor\n  group_size: 32\n  channel_axis: null\n"
      "  cluster_dim: 1\n  enable_per_channel_scale: false\n  num_kmeans_workers: 1\n"
      "  weight_threshold: 2048\n"
      "op_type_configs: {}\n"
      "op_name_configs:\n"
      "  \"v\": null\n"
      "  \"w\":\n"
      "    mode: kmeans\n    nbits: 4\n    granularity: per_tensor\n    group_size: 32\n"
      "    channel_axis: null\n    cluster_dim: 1\n    enable_per_channel_scale: false\n"
      "    num_kmeans_workers: 1\n    weight_threshold: 2048\n");
  REQUIRE(AllocationConfigYaml(a, base, ConfigSchema::kTorch, &yaml).ok());
  CHECK(
      yaml ==
      "# palettize bit allocation, --target-bpw 4: 2 weights, 600 bytes, 4.0000 bits per weight, total cost "
      "0.5, gap 0\n"
      "global_config:\n  n_bits: 6\n  granularity: per_tensor\n"
      "module_type_configs: {}\n"
      "module_name_configs:\n"
      "  \"v\": null\n"
      "  \"w\":\n    n_bits: 4\n    granularity: per_tensor\n");
}

TEST_CASE("emit-config: names YAML would misread are quoted and read back as written", "[allocation]") {
  const std::vector<std::string> names = {
      "null",
      "true",
      "~",
      "123",
      "a: b",
      "#c",
      "quote\"back\\slash",
      "tab\there",
      "new\nline",
      "über",
      "line\xE2\x80\xA8sep",
      "nel\xC2\x85",
      "- dash",
      "[x]",
      "{y}",
      "&anchor",
      "*alias",
      "!tag",
      "",
  };
  OptimizationConfig config;
  for (const std::string& n : names) config.op_name_configs[n] = Bits(4);
  config.op_type_configs["linear: x"] = std::nullopt;
  std::string yaml;
  REQUIRE(ConfigYaml(config, ConfigSchema::kCoreml, "", &yaml).ok());
  OptimizationConfig read;
  const Status st = ParseOptimizationConfig(yaml, "q.yaml", &read);
  INFO(yaml);
  REQUIRE(st.ok());
  REQUIRE(read.op_name_configs.size() == names.size());
  for (const std::string& n : names) {
    INFO(n);
    REQUIRE(read.op_name_configs.count(n));
    CHECK(read.op_name_configs.at(n)->nbits == 4);
  }
  CHECK(read.op_type_configs.count("linear: x"));
  CHECK_FALSE(read.global_config.has_value());
}

TEST_CASE("emit-config: every config field survives both schemas", "[allocation]") {
  PalettizeConfig grouped = Bits(3);
  grouped.granularity = Granularity::kPerGroupedChannel;
  grouped.group_size = 8;
  grouped.channel_axis = 1;
  grouped.lut_dtype = LutDType::kUInt8;
  grouped.weight_threshold = 100;
  PalettizeConfig vector = Bits(4);
  vector.cluster_dim = 2;
  vector.lut_dtype = LutDType::kInt8;
  PalettizeConfig scaled = Bits(2);
  scaled.enable_per_channel_scale = true;
  scaled.channel_axis = 0;
  scaled.mode = PalettizeMode::kUniform;
  PalettizeConfig unique;
  unique.mode = PalettizeMode::kUnique;
  OptimizationConfig config;
  config.global_config = grouped;
  config.op_name_configs = {{"a", grouped}, {"b", vector}, {"c", scaled}, {"d", unique}, {"e", std::nullopt}};
  for (const ConfigSchema schema : {ConfigSchema::kCoreml, ConfigSchema::kTorch}) {
    const bool torch = schema == ConfigSchema::kTorch;
    config.op_type_configs.clear();
    config.op_type_configs[torch ? "Linear" : "linear"] = vector;
    config.op_type_configs[torch ? "Embedding" : "gather"] = std::nullopt;
    std::string yaml;
    REQUIRE(ConfigYaml(config, schema, "two\nlines", &yaml).ok());
    CHECK(yaml.rfind("# two\n# lines\n", 0) == 0);
    OptimizationConfig read;
    INFO(yaml);
    REQUIRE((torch ? ParseTorchPalettizerConfig(yaml, "t.yaml", &read)
                   : ParseOptimizationConfig(yaml, "c.yaml", &read))
                .ok());
    REQUIRE(read.global_config.has_value());
    CHECK(SameConfig(*read.global_config, grouped));
    REQUIRE(read.op_name_configs.size() == config.op_name_configs.size());
    for (const auto& [name, c] : config.op_name_configs) {
      INFO(name);
      REQUIRE(read.op_name_configs.at(name).has_value() == c.has_value());
      if (c) CHECK(SameConfig(*read.op_name_configs.at(name), *c));
    }
    REQUIRE(read.op_type_configs.size() == 2);
    CHECK(SameConfig(*read.op_type_configs.at(torch ? "Linear" : "linear"), vector));
    CHECK_FALSE(read.op_type_configs.at(torch ? "Embedding" : "gather").has_value());
  }
}

TEST_CASE("emit-config: checkpoint allocations read back through the module rule", "[allocation]") {
  auto tensor = [](std::string name, std::vector<uint64_t> shape) {
    SafeTensor t;
    t.name = std::move(name);
    t.dtype = SafeDType::kF16;
    t.shape = std::move(shape);
    for (uint64_t d : t.shape) t.elements *= d;
    t.bytes = t.elements * 2;
    return t;
  };
  const std::vector<SafeTensor> tensors = {
      tensor("encoder.layer.0.attention.query.weight", {64, 64}),
      tensor("encoder.layer.0.attention.key.weight", {64, 64}),
      tensor("encoder.layer.1.dense.weight", {128, 64}),
      tensor("embeddings.word_embeddings.weight", {100, 64}),
  };
  OptimizationConfig base;
  base.global_config = Bits(4);
  base.op_type_configs["Embedding"] = std::nullopt;
  base.op_name_configs["encoder.layer.1"] = Bits(8);
  base.op_name_configs["encoder.layer.1"]->granularity = Granularity::kPerGroupedChannel;
  base.op_name_configs["encoder.layer.1"]->group_size = 32;
  std::vector<TensorPlan> before;
  REQUIRE(PlanCheckpoint(tensors, base, "m.safetensors", &before).ok());
  Allocation a;
  const int chosen[] = {1, 4, 0};  // query 4-bit, key kept, dense 2-bit
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE(before[i].plan.palettize);
    WeightAllocation w;
    w.name = tensors[i].name;
    w.config_key = before[i].module;
    w.config = before[i].plan.config;
    w.elements = tensors[i].elements;
    w.candidates = Curve(w.elements);
    w.chosen = chosen[i];
    a.weights.push_back(w);
  }
  std::string yaml;
  REQUIRE(AllocationConfigYaml(a, base, ConfigSchema::kTorch, &yaml).ok());
  OptimizationConfig read;
  INFO(yaml);
  REQUIRE(ParseTorchPalettizerConfig(yaml, "emitted.yaml", &read).ok());
  std::vector<TensorPlan> after;
  REQUIRE(PlanCheckpoint(tensors, read, "m.safetensors", &after).ok());
  CHECK(after[0].plan.palettize);
  CHECK(after[0].plan.config.nbits == 4);
  CHECK(after[0].plan.config_source == "module_name_configs.encoder.layer.0.attention.query");
  CHECK_FALSE(after[1].plan.palettize);
  CHECK(after[1].plan.reason ==
        "skipped by config (module_name_configs.encoder.layer.0.attention.key is null)");
  PalettizeConfig dense = *base.op_name_configs["encoder.layer.1"];
  dense.nbits = 2;
  CHECK(SameConfig(after[2].plan.config, dense));
  CHECK(after[3].plan.reason == before[3].plan.reason);
}

TEST_CASE("emit-config: what a config cannot say is an error", "[allocation]") {
  Allocation a;
  WeightAllocation w;
  w.name = "f1/w";
  w.config_key = "w";
  w.config = Bits(6);
  w.candidates = Curve(4096);
  w.chosen = 1;
  a.weights.push_back(w);
  w.name = "f2/w";
  w.chosen = 2;
  a.weights.push_back(w);
  OptimizationConfig out;
  CHECK(AllocationConfig(a, {}, &out).message() ==
        "allocation: weight 'f2/w' and weight 'f1/w' share the config key 'w' but were given different "
        "configs (kmeans 6-bit per_tensor; kmeans 4-bit per_tensor)");
  a.weights[1].chosen = 1;  // the same choice for both copies is fine
  CHECK(AllocationConfig(a, {}, &out).ok());
  CHECK(out.op_name_configs.size() == 1);

  a.weights[1].chosen = 7;
  CHECK(AllocationConfig(a, {}, &out).message() ==
        "allocation: weight 'f2/w': chosen candidate 7 is not one of its 5");
  a.weights[1].chosen = 1;
  a.weights[1].config_key.clear();
  CHECK(AllocationConfig(a, {}, &out).message() == "allocation: weight 'f2/w': no config key");
  a.weights[1].config_key = "w\xff";
  std::string yaml;
  CHECK(AllocationConfigYaml(a, {}, ConfigSchema::kCoreml, &yaml).message() ==
        "op_name_configs: name 'w\xff' is not valid UTF-8 and cannot be written in YAML");
  a.weights[1].config_key = "v";
  a.weights[1].config.mode = PalettizeMode::kUnique;
  CHECK(
      AllocationConfig(a, {}, &out).message() ==
      "allocation: weight 'f2/w': nbits: must not be set for unique mode (it uses the fewest bits that hold "
      "the weight's distinct values)");

  OptimizationConfig torch;
  torch.global_config = Bits(4);
  torch.global_config->channel_axis = 2;
  CHECK(ConfigYaml(torch, ConfigSchema::kTorch, "", &yaml).message() ==
        "global_config: channel_axis: 2 is not one of 0, 1, null (Torch schema)");
}

TEST_CASE("emit-config: written beside, then renamed; errors name the file", "[allocation]") {
  TempDir dir;
  Allocation a;
  WeightAllocation w;
  w.name = w.config_key = "w";
  w.config = Bits(6);
  w.candidates = Curve(4096);
  w.chosen = 0;
  a.weights.push_back(w);
  const std::string path = dir.path() + "/out.yaml";
  REQUIRE(WriteAllocationConfig(path, a, {}, ConfigSchema::kCoreml).ok());
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string want;
  REQUIRE(AllocationConfigYaml(a, {}, ConfigSchema::kCoreml, &want).ok());
  CHECK(text.str() == want);
  CHECK(WriteAllocationConfig(dir.path(), a, {}, ConfigSchema::kCoreml).message() ==
        dir.path() + ": cannot write config: Is a directory");
  CHECK(WriteAllocationConfig(dir.path() + "/no/such/c.yaml", a, {}, ConfigSchema::kCoreml)
            .message()
            .rfind(dir.path() + "/no/such/c.yaml: cannot write config: ", 0) == 0);
}
