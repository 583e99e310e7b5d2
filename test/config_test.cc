// YAML configs: the examples in configs/, coremltools' defaults and null semantics, and the exact
// wording of each kind of error (users and scripts read these lines).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "palettize/config.h"

using namespace palettize;

namespace {

// configs/ sits beside test/ in the source tree; the build tree has no copy.
std::string ExampleConfig(const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path() / ".." / "configs";
  std::ifstream in(dir / name, std::ios::binary);
  REQUIRE(in);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

OptimizationConfig Parse(const std::string& text) {
  OptimizationConfig c;
  const Status st = ParseOptimizationConfig(text, "c.yaml", &c);
  INFO(st.message());
  REQUIRE(st.ok());
  return c;
}

OptimizationConfig ParseExample(const std::string& name) {
  OptimizationConfig c;
  const Status st = ParseOptimizationConfig(ExampleConfig(name), name, &c);
  INFO(st.message());
  REQUIRE(st.ok());
  return c;
}

// The error message for `text`, which must fail with InvalidArgument.
std::string Error(const std::string& text) {
  OptimizationConfig c;
  const Status st = ParseOptimizationConfig(text, "c.yaml", &c);
  REQUIRE_FALSE(st.ok());
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message().find('\n') == std::string::npos);
  return st.message();
}

// The exact coremltools defaults apart from the keys a test sets.
void CheckDefaultsExceptMode(const PalettizeConfig& c) {
  CHECK(c.granularity == Granularity::kPerTensor);
  CHECK(c.group_size == 32);
  CHECK_FALSE(c.channel_axis.has_value());
  CHECK(c.cluster_dim == 1);
  CHECK_FALSE(c.enable_per_channel_scale);
  CHECK(c.lut_dtype == LutDType::kFloat);
  CHECK(c.num_kmeans_workers == 1);
  CHECK(c.weight_threshold == 2048);
}

}  // namespace

TEST_CASE("configs/default.yaml is the CLI default: 6-bit kmeans per_tensor", "[config]") {
  const OptimizationConfig c = ParseExample("default.yaml");
  REQUIRE(c.global_config.has_value());
  CHECK(c.global_config->mode == PalettizeMode::kKMeans);
  CHECK(c.global_config->nbits == 6);
  CheckDefaultsExceptMode(*c.global_config);
  CHECK(c.op_type_configs.empty());
  CHECK(c.op_name_configs.empty());
  CHECK(DescribeConfig(*c.global_config) == "kmeans 6-bit per_tensor");
}

TEST_CASE("configs/threshold_512.yaml lowers weight_threshold only", "[config]") {
  const OptimizationConfig c = ParseExample("threshold_512.yaml");
  REQUIRE(c.global_config.has_value());
  CHECK(c.global_config->mode == PalettizeMode::kKMeans);
  CHECK(c.global_config->nbits == 6);
  CHECK(c.global_config->weight_threshold == 512);
  CHECK(c.global_config->group_size == 32);
  CHECK(c.op_type_configs.empty());
  CHECK(c.op_name_configs.empty());
}

TEST_CASE("configs/linear8_skip_conv1_conv3.yaml: op type override and skipped names", "[config]") {
  const OptimizationConfig c = ParseExample("linear8_skip_conv1_conv3.yaml");
  REQUIRE(c.global_config.has_value());
  CHECK(c.global_config->nbits == 6);
  REQUIRE(c.op_type_configs.size() == 1);
  REQUIRE(c.op_type_configs.at("linear").has_value());
  CHECK(c.op_type_configs.at("linear")->mode == PalettizeMode::kKMeans);
  CHECK(c.op_type_configs.at("linear")->nbits == 8);
  CheckDefaultsExceptMode(*c.op_type_configs.at("linear"));
  REQUIRE(c.op_name_configs.size() == 2);
  CHECK_FALSE(c.op_name_configs.at("conv1").has_value());
  CHECK_FALSE(c.op_name_configs.at("conv3").has_value());
}

TEST_CASE("configs/grouped_4bit.yaml: per_grouped_channel, group_size 16", "[config]") {
  const OptimizationConfig c = ParseExample("grouped_4bit.yaml");
  REQUIRE(c.global_config.has_value());
  CHECK(c.global_config->nbits == 4);
  CHECK(c.global_config->granularity == Granularity::kPerGroupedChannel);
  CHECK(c.global_config->group_size == 16);
  CHECK_FALSE(c.global_config->channel_axis.has_value());
  CHECK(DescribeConfig(*c.global_config) == "kmeans 4-bit per_grouped_channel(group_size=16)");
}

TEST_CASE("configs/vector_iOS18.yaml: cluster_dim 2, per-channel scale, int8 tables", "[config]") {
  const OptimizationConfig c = ParseExample("vector_iOS18.yaml");
  REQUIRE(c.global_config.has_value());
  const PalettizeConfig& g = *c.global_config;
  CHECK(g.mode == PalettizeMode::kKMeans);
  CHECK(g.nbits == 4);
  CHECK(g.cluster_dim == 2);
  CHECK(g.enable_per_channel_scale);
  CHECK(g.lut_dtype == LutDType::kInt8);
  CHECK(g.granularity == Granularity::kPerTensor);
  CHECK(DescribeConfig(g) == "kmeans 4-bit per_tensor cluster_dim=2 per_channel_scale lut=int8");
}

TEST_CASE("configs/unique_lossless.yaml: unique mode without nbits", "[config]") {
  const OptimizationConfig c = ParseExample("unique_lossless.yaml");
  REQUIRE(c.global_config.has_value());
  CHECK(c.global_config->mode == PalettizeMode::kUnique);
  CHECK(c.global_config->nbits == 0);
  CheckDefaultsExceptMode(*c.global_config);
  CHECK(DescribeConfig(*c.global_config) == "unique per_tensor");
}

TEST_CASE("every file in configs/ parses", "[config]") {
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path() / ".." / "configs";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    INFO(entry.path().filename().string());
    ParseExample(entry.path().filename().string());
    ++files;
  }
  CHECK(files >= 6);
}

TEST_CASE("defaults are coremltools' OpPalettizerConfig defaults", "[config]") {
  const PalettizeConfig d;
  CHECK(d.mode == PalettizeMode::kKMeans);
  CheckDefaultsExceptMode(d);
  const OptimizationConfig c = Parse("global_config:\n  nbits: 4\n");
  REQUIRE(c.global_config.has_value());
  CHECK(c.global_config->mode == PalettizeMode::kKMeans);
  CHECK(c.global_config->nbits == 4);
  CheckDefaultsExceptMode(*c.global_config);
}

TEST_CASE("empty file, comments only and empty mapping configure nothing", "[config]") {
  for (const char* text : {"", "# nothing\n", "{}\n", "~\n", "config_type: OpPalettizerConfig\n"}) {
    INFO(text);
    const OptimizationConfig c = Parse(text);
    CHECK_FALSE(c.global_config.has_value());
    CHECK(c.op_type_configs.empty());
    CHECK(c.op_name_configs.empty());
  }
}

TEST_CASE("null means skip; null tables are empty", "[config]") {
  OptimizationConfig c = Parse("global_config: null\nop_type_configs: null\nop_name_configs:\n");
  CHECK_FALSE(c.global_config.has_value());
  CHECK(c.op_type_configs.empty());
  CHECK(c.op_name_configs.empty());

  c = Parse("global_config: {nbits: 6}\nop_type_configs: {conv: ~}\nop_name_configs: {conv1: null}\n");
  REQUIRE(c.global_config.has_value());
  REQUIRE(c.op_type_configs.count("conv") == 1);
  CHECK_FALSE(c.op_type_configs.at("conv").has_value());
  REQUIRE(c.op_name_configs.count("conv1") == 1);
  CHECK_FALSE(c.op_name_configs.at("conv1").has_value());

  // Nullable keys fall back to their defaults.
  c = Parse("global_config:\n  mode: unique\n  nbits: null\n  channel_axis: null\n  lut_dtype: null\n");
  REQUIRE(c.global_config.has_value());
  CHECK(c.global_config->nbits == 0);
  CHECK_FALSE(c.global_config->channel_axis.has_value());
  CHECK(c.global_config->lut_dtype == LutDType::kFloat);
}

TEST_CASE("mode and granularity are case-insensitive; JSON syntax works", "[config]") {
  OptimizationConfig c = Parse(
      "global_config: {mode: KMeans, nbits: 2, granularity: PER_GROUPED_CHANNEL}\n"
      "op_type_configs: {linear: {mode: UNIFORM, nbits: 8}, conv: {mode: Unique}}\n");
  CHECK(c.global_config->mode == PalettizeMode::kKMeans);
  CHECK(c.global_config->granularity == Granularity::kPerGroupedChannel);
  CHECK(c.op_type_configs.at("linear")->mode == PalettizeMode::kUniform);
  CHECK(c.op_type_configs.at("conv")->mode == PalettizeMode::kUnique);

  c = Parse(R"({"config_type": "OpPalettizerConfig",
                "global_config": {"mode": "kmeans", "nbits": 3, "channel_axis": -1,
                                  "enable_per_channel_scale": true, "lut_dtype": "uint8"},
                "op_name_configs": {"layers.0.weight": {"config_type": "OpPalettizerConfig",
                                                        "mode": "unique"}}})");
  CHECK(c.global_config->nbits == 3);
  CHECK(c.global_config->channel_axis == -1);
  CHECK(c.global_config->enable_per_channel_scale);
  CHECK(c.global_config->lut_dtype == LutDType::kUInt8);
  CHECK(c.op_name_configs.at("layers.0.weight")->mode == PalettizeMode::kUnique);
}

TEST_CASE("YAML 1.1 booleans, as PyYAML reads them", "[config]") {
  CHECK(Parse("global_config: {nbits: 4, enable_per_channel_scale: yes}")
            .global_config->enable_per_channel_scale);
  CHECK_FALSE(Parse("global_config: {nbits: 4, enable_per_channel_scale: Off}")
                  .global_config->enable_per_channel_scale);
}

TEST_CASE("error: invalid YAML", "[config]") {
  CHECK(Error("global_config:\n  nbits: [4\n") == "c.yaml:3: invalid YAML: end of sequence flow not found");
  CHECK(Error("config_type: OpPalettizerConfig\n\tglobal_config: {nbits: 6}\n") ==
        "c.yaml:2: invalid YAML: illegal tab when looking for indentation");
}

TEST_CASE("error: more than one YAML document", "[config]") {
  CHECK(Error("global_config: {nbits: 6}\n---\nglobal_config: {nbits: 4}\n") ==
        "c.yaml:3: invalid YAML: expected a single document, found a second one");
}

TEST_CASE("error: top level is not a mapping", "[config]") {
  CHECK(Error("- nbits: 6\n") ==
        "c.yaml:1: a sequence is not a mapping (allowed keys: config_type, global_config, "
        "op_type_configs, op_name_configs)");
  CHECK(Error("nbits\n") ==
        "c.yaml:1: nbits is not a mapping (allowed keys: config_type, global_config, "
        "op_type_configs, op_name_configs)");
}

TEST_CASE("error: unknown top-level key", "[config]") {
  CHECK(Error("global_config: {nbits: 6}\nop_name_config: {conv1: null}\n") ==
        "c.yaml:2: op_name_config: unknown key (allowed: config_type, global_config, "
        "op_type_configs, op_name_configs)");
}

TEST_CASE("error: config_type other than OpPalettizerConfig", "[config]") {
  CHECK(Error("config_type: OpLinearQuantizerConfig\n") ==
        "c.yaml:1: config_type: OpLinearQuantizerConfig is not supported (only OpPalettizerConfig; "
        "palettize does not quantize or prune)");
  CHECK(Error("op_type_configs:\n  conv:\n    config_type: OpMagnitudePrunerConfig\n") ==
        "c.yaml:3: op_type_configs.conv.config_type: OpMagnitudePrunerConfig is not supported "
        "(only OpPalettizerConfig; palettize does not quantize or prune)");
}

TEST_CASE("error: a config or table of the wrong shape", "[config]") {
  CHECK(Error("global_config: 6\n") ==
        "c.yaml:1: global_config: 6 is not a mapping (an OpPalettizerConfig) or null");
  CHECK(Error("op_type_configs:\n  - linear\n") ==
        "c.yaml:1: op_type_configs: a sequence is not a mapping from name to config (or null)");
  CHECK(Error("op_type_configs:\n  linear: 8\n") ==
        "c.yaml:2: op_type_configs.linear: 8 is not a mapping (an OpPalettizerConfig) or null");
}

TEST_CASE("error: unknown key in a config", "[config]") {
  CHECK(Error("global_config:\n  mod: kmeans\n") ==
        "c.yaml:2: global_config.mod: unknown key (allowed: mode, nbits, granularity, group_size, "
        "channel_axis, cluster_dim, enable_per_channel_scale, num_kmeans_workers, weight_threshold, "
        "lut_dtype)");
}

TEST_CASE("error: duplicate keys", "[config]") {
  CHECK(Error("global_config:\n  nbits: 6\n  mode: kmeans\n  nbits: 4\n") ==
        "c.yaml:4: global_config.nbits: duplicate key (first at line 2)");
  CHECK(Error("global_config: {nbits: 6}\nglobal_config: {nbits: 4}\n") ==
        "c.yaml:2: global_config: duplicate key (first at line 1)");
  CHECK(Error("op_name_configs:\n  conv1: null\n  conv1: {nbits: 8}\n") ==
        "c.yaml:3: op_name_configs.conv1: duplicate key (first at line 2)");
}

TEST_CASE("error: nbits not one of 1, 2, 3, 4, 6, 8", "[config]") {
  const std::string head = "global_config: {nbits: 6}\nop_type_configs:\n  linear:\n";
  CHECK(Error(head + "    nbits: 5\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: 5 is not one of 1, 2, 3, 4, 6, 8");
  CHECK(Error(head + "    nbits: 0\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: 0 is not one of 1, 2, 3, 4, 6, 8");
  CHECK(Error(head + "    nbits: six\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: six is not one of 1, 2, 3, 4, 6, 8");
  CHECK(Error(head + "    nbits: 6.5\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: 6.5 is not one of 1, 2, 3, 4, 6, 8");
  CHECK(Error(head + "    nbits: true\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: true is not one of 1, 2, 3, 4, 6, 8");
  CHECK(Error(head + "    nbits: \"6\"\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: \"6\" is not one of 1, 2, 3, 4, 6, 8");
  CHECK(Error(head + "    nbits: 010\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: 010 is not one of 1, 2, 3, 4, 6, 8");
  CHECK(Error(head + "    nbits: [4]\n") ==
        "c.yaml:4: op_type_configs.linear.nbits: a sequence is not one of 1, 2, 3, 4, 6, 8");
}

TEST_CASE("error: nbits missing for kmeans/uniform, present for unique", "[config]") {
  CHECK(Error("global_config:\n  mode: kmeans\n") ==
        "c.yaml:1: global_config: nbits is required for kmeans mode (one of 1, 2, 3, 4, 6, 8)");
  CHECK(Error("global_config: {}\n") ==
        "c.yaml:1: global_config: nbits is required for kmeans mode (one of 1, 2, 3, 4, 6, 8)");
  CHECK(Error("op_type_configs:\n  conv:\n    mode: uniform\n    nbits: null\n") ==
        "c.yaml:2: op_type_configs.conv: nbits is required for uniform mode (one of 1, 2, 3, 4, 6, 8)");
  CHECK(Error("global_config:\n  mode: unique\n  nbits: 4\n") ==
        "c.yaml:3: global_config.nbits: must not be set for unique mode (it uses the fewest bits that "
        "hold the weight's distinct values)");
}

TEST_CASE("error: mode", "[config]") {
  CHECK(Error("global_config:\n  mode: custom\n") ==
        "c.yaml:2: global_config.mode: custom mode needs a Python lut_function and is not supported");
  CHECK(Error("global_config:\n  mode: CUSTOM\n") ==
        "c.yaml:2: global_config.mode: custom mode needs a Python lut_function and is not supported");
  CHECK(Error("global_config:\n  mode: linear\n  nbits: 4\n") ==
        "c.yaml:2: global_config.mode: linear is not one of kmeans, uniform, unique");
  CHECK(Error("global_config:\n  mode:\n  nbits: 4\n") ==
        "c.yaml:2: global_config.mode: null is not one of kmeans, uniform, unique");
}

TEST_CASE("error: lut_function", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  lut_function: my_lut\n") ==
        "c.yaml:3: global_config.lut_function: not supported (it is a Python function; use mode "
        "kmeans, uniform or unique)");
}

TEST_CASE("error: granularity", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  granularity: per_channel\n") ==
        "c.yaml:3: global_config.granularity: per_channel is not supported for palettization (only "
        "per_tensor, per_grouped_channel)");
  CHECK(Error("global_config:\n  nbits: 4\n  granularity: Per_Block\n") ==
        "c.yaml:3: global_config.granularity: Per_Block is not supported for palettization (only "
        "per_tensor, per_grouped_channel)");
  CHECK(Error("global_config:\n  nbits: 4\n  granularity: per_group\n") ==
        "c.yaml:3: global_config.granularity: per_group is not one of per_tensor, per_grouped_channel");
}

TEST_CASE("error: group_size", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  group_size: 0\n") ==
        "c.yaml:3: global_config.group_size: 0 is not an integer >= 1");
  CHECK(Error("global_config:\n  nbits: 4\n  group_size: sixteen\n") ==
        "c.yaml:3: global_config.group_size: sixteen is not an integer >= 1");
  CHECK(Error("global_config:\n  nbits: 4\n  group_size:\n") ==
        "c.yaml:3: global_config.group_size: null is not an integer >= 1");
}

TEST_CASE("error: cluster_dim", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  cluster_dim: 0\n") ==
        "c.yaml:3: global_config.cluster_dim: 0 is not an integer >= 1");
  CHECK(Error("global_config:\n  mode: uniform\n  nbits: 4\n  cluster_dim: 2\n") ==
        "c.yaml:4: global_config.cluster_dim: 2 is not allowed with uniform mode (vector "
        "palettization, cluster_dim > 1, needs kmeans or unique)");
}

TEST_CASE("error: num_kmeans_workers", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  num_kmeans_workers: 0\n") ==
        "c.yaml:3: global_config.num_kmeans_workers: 0 is not an integer >= 1");
}

TEST_CASE("error: weight_threshold negative or null", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  weight_threshold: -1\n") ==
        "c.yaml:3: global_config.weight_threshold: -1 is not an integer >= 0");
  CHECK(Error("global_config:\n  nbits: 4\n  weight_threshold: null\n") ==
        "c.yaml:3: global_config.weight_threshold: null is not an integer >= 0 (coremltools accepts "
        "null here, then refuses to compress: \"weight_threshold cannot be None\")");
  CHECK(Parse("global_config: {nbits: 4, weight_threshold: 0}").global_config->weight_threshold == 0);
}

TEST_CASE("error: channel_axis", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  channel_axis: first\n") ==
        "c.yaml:3: global_config.channel_axis: first is not an integer or null");
}

TEST_CASE("error: enable_per_channel_scale must be a YAML bool", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  enable_per_channel_scale: 1\n") ==
        "c.yaml:3: global_config.enable_per_channel_scale: 1 is not a bool (true or false)");
  CHECK(Error("global_config:\n  nbits: 4\n  enable_per_channel_scale: \"true\"\n") ==
        "c.yaml:3: global_config.enable_per_channel_scale: \"true\" is not a bool (true or false)");
}

TEST_CASE("error: lut_dtype", "[config]") {
  CHECK(Error("global_config:\n  nbits: 4\n  lut_dtype: float16\n") ==
        "c.yaml:3: global_config.lut_dtype: float16 is not one of int8, uint8, null (null: the "
        "weight's own dtype)");
}

TEST_CASE("errors stay on one line", "[config]") {
  CHECK(Error("global_config:\n  mode: \"k\\nmeans\"\n  nbits: 4\n") ==
        "c.yaml:2: global_config.mode: \"k\\nmeans\" is not one of kmeans, uniform, unique");
}

TEST_CASE("a failed parse leaves the output empty", "[config]") {
  OptimizationConfig c;
  c.op_name_configs["old"] = std::nullopt;
  CHECK_FALSE(ParseOptimizationConfig("global_config: {nbits: 4}\nbad: 1\n", "c.yaml", &c).ok());
  CHECK_FALSE(c.global_config.has_value());
  CHECK(c.op_name_configs.empty());
}

TEST_CASE("ValidatePalettizeConfig: same rules and wording as the parser", "[config]") {
  PalettizeConfig c;
  CHECK(ValidatePalettizeConfig(c, "options").message() ==
        "options: nbits is required for kmeans mode (one of 1, 2, 3, 4, 6, 8)");
  c.nbits = 5;
  CHECK(ValidatePalettizeConfig(c, "--nbits").message() == "--nbits: 5 is not one of 1, 2, 3, 4, 6, 8");
  CHECK(ValidatePalettizeConfig(c, "op_type_configs.linear").message() ==
        "op_type_configs.linear: nbits: 5 is not one of 1, 2, 3, 4, 6, 8");
  c.nbits = 6;
  CHECK(ValidatePalettizeConfig(c, "--nbits").ok());
  c.group_size = 0;
  CHECK(ValidatePalettizeConfig(c, "--group-size").message() == "--group-size: 0 is not an integer >= 1");
  CHECK(ValidatePalettizeConfig(c, "options").message() == "options: group_size: 0 is not an integer >= 1");
  c.group_size = 32;
  c.mode = PalettizeMode::kUniform;
  c.cluster_dim = 2;
  CHECK(ValidatePalettizeConfig(c, "options").message() ==
        "options: cluster_dim: 2 is not allowed with uniform mode (vector palettization, "
        "cluster_dim > 1, needs kmeans or unique)");
  c.cluster_dim = 1;
  c.weight_threshold = -5;
  CHECK(ValidatePalettizeConfig(c, "--weight-threshold").message() ==
        "--weight-threshold: -5 is not an integer >= 0");
  c.weight_threshold = 0;
  c.num_kmeans_workers = 0;
  CHECK(ValidatePalettizeConfig(c, "global_config").message() ==
        "global_config: num_kmeans_workers: 0 is not an integer >= 1");
  c.num_kmeans_workers = 1;
  c.mode = PalettizeMode::kUnique;
  const Status st = ValidatePalettizeConfig(c, "--mode");
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() ==
        "--mode: nbits: must not be set for unique mode (it uses the fewest bits that hold the "
        "weight's distinct values)");
  c.nbits = 0;
  CHECK(ValidatePalettizeConfig(c, "--mode").ok());
}

TEST_CASE("DescribeConfig", "[config]") {
  PalettizeConfig c;
  c.nbits = 6;
  CHECK(DescribeConfig(c) == "kmeans 6-bit per_tensor");
  c.mode = PalettizeMode::kUniform;
  c.nbits = 4;
  c.granularity = Granularity::kPerGroupedChannel;
  c.group_size = 16;
  c.channel_axis = 0;
  c.enable_per_channel_scale = true;
  c.lut_dtype = LutDType::kUInt8;
  c.weight_threshold = 0;
  CHECK(DescribeConfig(c) ==
        "uniform 4-bit per_grouped_channel(group_size=16, axis=0) per_channel_scale lut=uint8");
}
