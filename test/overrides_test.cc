// Config overrides (an app's options over a config's global_config) and the parsing of option
// names: the default without a file, which fields each override touches, the unique/nbits rule, and
// the exact wording of bad values.
#include <catch2/catch.hpp>

#include "palettize/overrides.h"

using namespace palettize;

namespace {

OptimizationConfig FromYaml(const std::string& text) {
  OptimizationConfig c;
  const Status st = ParseOptimizationConfig(text, "c.yaml", &c);
  INFO(st.message());
  REQUIRE(st.ok());
  return c;
}

}  // namespace

TEST_CASE("the default config is kmeans 6-bit per_tensor for every weight", "[overrides]") {
  const OptimizationConfig c = DefaultOptimizationConfig();
  REQUIRE(c.global_config);
  CHECK(DescribeConfig(*c.global_config) == "kmeans 6-bit per_tensor");
  CHECK(c.global_config->weight_threshold == 2048);
  CHECK(c.op_type_configs.empty());
  CHECK(c.op_name_configs.empty());
  OptimizationConfig resolved;
  REQUIRE(ResolveConfig("", false, ConfigOverrides(), &resolved).ok());
  CHECK(DescribeConfig(*resolved.global_config) == "kmeans 6-bit per_tensor");
}

TEST_CASE("no override leaves a config as read, a null global_config too", "[overrides]") {
  OptimizationConfig c = FromYaml("global_config: null\nop_type_configs: {linear: {nbits: 4}}\n");
  CHECK(ConfigOverrides().empty());
  REQUIRE(ApplyOverrides(ConfigOverrides(), &c).ok());
  CHECK(!c.global_config);
  REQUIRE(c.op_type_configs.at("linear"));
  CHECK(c.op_type_configs.at("linear")->nbits == 4);
}

TEST_CASE("each override replaces its field of global_config, and only that", "[overrides]") {
  OptimizationConfig c = FromYaml("global_config: {mode: uniform, nbits: 4, weight_threshold: 10}\n"
                                  "op_name_configs: {conv1: {nbits: 2}}\n");
  ConfigOverrides o;
  o.nbits = 3;
  o.granularity = Granularity::kPerGroupedChannel;
  o.group_size = 16;
  o.channel_axis = 1;
  o.enable_per_channel_scale = true;
  o.lut_dtype = LutDType::kUInt8;
  CHECK(!o.empty());
  REQUIRE(ApplyOverrides(o, &c).ok());
  const PalettizeConfig& g = *c.global_config;
  CHECK(g.mode == PalettizeMode::kUniform);  // from the file
  CHECK(g.weight_threshold == 10);           // from the file
  CHECK(DescribeConfig(g) == "uniform 3-bit per_grouped_channel(group_size=16, axis=1) per_channel_scale lut=uint8");
  CHECK(c.op_name_configs.at("conv1")->nbits == 2);  // overrides touch global_config only

  ConfigOverrides rest;
  rest.mode = PalettizeMode::kKMeans;
  rest.cluster_dim = 2;
  rest.weight_threshold = 0;
  rest.enable_per_channel_scale = false;
  REQUIRE(ApplyOverrides(rest, &c).ok());
  CHECK(c.global_config->mode == PalettizeMode::kKMeans);
  CHECK(c.global_config->nbits == 3);
  CHECK(c.global_config->cluster_dim == 2);
  CHECK(c.global_config->weight_threshold == 0);
  CHECK(!c.global_config->enable_per_channel_scale);
}

TEST_CASE("an override over a missing or null global_config starts from the default", "[overrides]") {
  OptimizationConfig c = FromYaml("op_type_configs: {conv: null}\n");
  REQUIRE(!c.global_config);
  ConfigOverrides o;
  o.weight_threshold = 100;
  REQUIRE(ApplyOverrides(o, &c).ok());
  REQUIRE(c.global_config);
  CHECK(c.global_config->nbits == 6);
  CHECK(c.global_config->weight_threshold == 100);
  CHECK(c.op_type_configs.count("conv") == 1);
}

TEST_CASE("mode unique clears nbits unless nbits is given; another mode brings 6 back", "[overrides]") {
  OptimizationConfig c = DefaultOptimizationConfig();
  ConfigOverrides unique;
  unique.mode = PalettizeMode::kUnique;
  REQUIRE(ApplyOverrides(unique, &c).ok());
  CHECK(DescribeConfig(*c.global_config) == "unique per_tensor");
  CHECK(c.global_config->nbits == 0);

  ConfigOverrides kmeans;
  kmeans.mode = PalettizeMode::kKMeans;
  REQUIRE(ApplyOverrides(kmeans, &c).ok());
  CHECK(c.global_config->nbits == 6);

  OptimizationConfig d = DefaultOptimizationConfig();
  unique.nbits = 4;
  const Status st = ApplyOverrides(unique, &d);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "options: nbits: must not be set for unique mode (it uses the fewest bits that hold the weight's "
                        "distinct values)");
}

TEST_CASE("overridden values are validated in the options context", "[overrides]") {
  OptimizationConfig c = DefaultOptimizationConfig();
  ConfigOverrides o;
  o.group_size = 0;
  Status st = ApplyOverrides(o, &c);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "options: group_size: 0 is not an integer >= 1");

  OptimizationConfig d = DefaultOptimizationConfig();
  ConfigOverrides n;
  n.nbits = 5;
  st = ApplyOverrides(n, &d);
  CHECK(st.message() == "options: nbits: 5 is not one of 1, 2, 3, 4, 6, 8");
}

TEST_CASE("a config file that cannot be read fails ResolveConfig before any override", "[overrides]") {
  OptimizationConfig c;
  ConfigOverrides o;
  o.nbits = 4;
  const Status st = ResolveConfig("/nonexistent/c.yaml", false, o, &c);
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message().rfind("/nonexistent/c.yaml: ", 0) == 0);
}

TEST_CASE("option names parse in any case; a bad one is named with the choices", "[overrides]") {
  PalettizeMode mode = PalettizeMode::kKMeans;
  REQUIRE(ParseMode("Uniform", &mode).ok());
  CHECK(mode == PalettizeMode::kUniform);
  REQUIRE(ParseMode("UNIQUE", &mode).ok());
  CHECK(mode == PalettizeMode::kUnique);
  REQUIRE(ParseMode("kmeans", &mode).ok());
  CHECK(mode == PalettizeMode::kKMeans);
  Status st = ParseMode("median", &mode);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == "'median' is not one of kmeans, uniform, unique");
  CHECK(mode == PalettizeMode::kKMeans);  // unchanged on error
  CHECK(!ParseMode("kmeans ", &mode).ok());
  CHECK(!ParseMode("", &mode).ok());

  Granularity g = Granularity::kPerTensor;
  REQUIRE(ParseGranularity("PER_GROUPED_CHANNEL", &g).ok());
  CHECK(g == Granularity::kPerGroupedChannel);
  REQUIRE(ParseGranularity("per_tensor", &g).ok());
  CHECK(g == Granularity::kPerTensor);
  // Same fifth letter as per_grouped_channel: a prefix test would take it.
  st = ParseGranularity("per_gizmo", &g);
  CHECK(st.message() == "'per_gizmo' is not one of per_tensor, per_grouped_channel");

  LutDType lut = LutDType::kFloat;
  REQUIRE(ParseLutDType("UInt8", &lut).ok());
  CHECK(lut == LutDType::kUInt8);
  REQUIRE(ParseLutDType("int8", &lut).ok());
  CHECK(lut == LutDType::kInt8);
  st = ParseLutDType("u4", &lut);
  CHECK(st.message() == "'u4' is not one of int8, uint8");

  DeploymentTarget t = DeploymentTarget::kAuto;
  REQUIRE(ParseDeploymentTarget("ios18", &t).ok());
  CHECK(t == DeploymentTarget::kIOS18);
  REQUIRE(ParseDeploymentTarget("IOS16", &t).ok());
  CHECK(t == DeploymentTarget::kIOS16);
  REQUIRE(ParseDeploymentTarget("iOS17", &t).ok());
  CHECK(t == DeploymentTarget::kIOS17);
  st = ParseDeploymentTarget("iOS15", &t);
  CHECK(st.message() == "'iOS15' is not one of iOS16, iOS17, iOS18");
  CHECK(!ParseDeploymentTarget("iOS180", &t).ok());
  CHECK(t == DeploymentTarget::kIOS17);
}
