// Config overrides (an app's options over a config's global_config) and the parsing of option
// names: the default without a file, which fields each override touches, the unique/nbits rule, and
// the exact wording of bad values.
#include <catch2/catch.hpp>

#include <cctype>
#include <utility>
#include <vector>

#include "palettize/overrides.h"
#include "test_util.h"

using namespace palettize;

namespace {

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// `parse` takes each of `good` in any case, and refuses `bad` with `message`, leaving its output.
template <typename T>
void CheckParse(Status (*parse)(const std::string&, T*), const std::vector<std::pair<std::string, T>>& good,
                const std::string& bad, const std::string& message) {
  for (const auto& [text, value] : good) {
    for (const std::string& spelling : {text, Upper(text)}) {
      T out{};
      INFO(spelling);
      REQUIRE(parse(spelling, &out).ok());
      CHECK(out == value);
    }
  }
  T out = good.front().second;
  const Status st = parse(bad, &out);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == message);
  CHECK(out == good.front().second);
  CHECK(!parse("", &out).ok());
  CHECK(!parse(good.front().first + " ", &out).ok());
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
  OptimizationConfig c;  // as "global_config: null" reads
  c.op_type_configs["linear"] = Bits(4);
  CHECK(ConfigOverrides().empty());
  REQUIRE(ApplyOverrides(ConfigOverrides(), &c).ok());
  CHECK(!c.global_config);
  REQUIRE(c.op_type_configs.at("linear"));
  CHECK(c.op_type_configs.at("linear")->nbits == 4);
}

TEST_CASE("each override replaces its field of global_config, and only that", "[overrides]") {
  OptimizationConfig c;
  c.global_config = Bits(4, PalettizeMode::kUniform);
  c.global_config->weight_threshold = 10;
  c.op_name_configs["conv1"] = Bits(2);
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
  CHECK(g.mode == PalettizeMode::kUniform);  // from the config
  CHECK(g.weight_threshold == 10);           // from the config
  CHECK(DescribeConfig(g) ==
        "uniform 3-bit per_grouped_channel(group_size=16, axis=1) per_channel_scale lut=uint8");
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
  OptimizationConfig c;
  c.op_type_configs["conv"] = std::nullopt;
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
  CHECK(st.message() ==
        "options: nbits: must not be set for unique mode (it uses the fewest bits that hold the weight's "
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
  CheckParse<PalettizeMode>(ParseMode,
                            {{"kmeans", PalettizeMode::kKMeans},
                             {"uniform", PalettizeMode::kUniform},
                             {"unique", PalettizeMode::kUnique}},
                            "median", "'median' is not one of kmeans, uniform, unique");
  // per_gizmo has per_grouped_channel's fifth letter: a test of one letter would take it.
  CheckParse<Granularity>(
      ParseGranularity,
      {{"per_tensor", Granularity::kPerTensor}, {"per_grouped_channel", Granularity::kPerGroupedChannel}},
      "per_gizmo", "'per_gizmo' is not one of per_tensor, per_grouped_channel");
  CheckParse<LutDType>(ParseLutDType, {{"int8", LutDType::kInt8}, {"UInt8", LutDType::kUInt8}}, "u4",
                       "'u4' is not one of int8, uint8");
  CheckParse<DeploymentTarget>(ParseDeploymentTarget,
                               {{"iOS16", DeploymentTarget::kIOS16},
                                {"ios17", DeploymentTarget::kIOS17},
                                {"iOS18", DeploymentTarget::kIOS18}},
                               "iOS15", "'iOS15' is not one of iOS16, iOS17, iOS18");
  DeploymentTarget t = DeploymentTarget::kAuto;
  CHECK(!ParseDeploymentTarget("iOS180", &t).ok());
}

TEST_CASE("sizes in bytes take binary units with or without B or iB, in any case", "[overrides]") {
  const std::vector<std::pair<std::string, double>> good = {{"1500000", 1500000},
                                                            {"512K", 512 * 1024.0},
                                                            {"1.5M", 1.5 * 1048576},
                                                            {"2GiB", 2 * 1073741824.0},
                                                            {"3kb", 3 * 1024.0},
                                                            {"1t", 1099511627776.0},
                                                            {"7B", 7},
                                                            {"0.5K", 512}};
  for (const auto& [text, want] : good) {
    INFO(text);
    double got = 0;
    REQUIRE(ParseByteSize(text, &got).ok());
    CHECK(got == want);
  }
  for (const std::string text :
       {"", "K", "1.5", "0", "-1M", "1.2.3M", ".5M", "1X", "1MM", "1 M", "1e9", "inf"}) {
    INFO(text);
    double got = -1;
    const Status st = ParseByteSize(text, &got);
    CHECK(!st.ok());
    CHECK(st.message() == "'" + text + "' is not a size in bytes (a number with an optional K, M, G or T)");
    CHECK(got == -1);
  }
}
