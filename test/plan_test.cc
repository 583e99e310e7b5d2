// Config resolution and skip rules of the planner, on hand-made weights.
#include <catch2/catch.hpp>

#include "plan/plan.h"
#include "test_util.h"

using namespace palettize;

namespace {

PlanInput Weight(const std::string& name, std::vector<uint64_t> dims, std::vector<PlanConsumer> consumers,
                 const std::string& dtype = "float16") {
  PlanInput w;
  w.name = name;
  w.dtype = dtype;
  w.dims = dims;
  w.elements = 1;
  for (uint64_t d : dims) w.elements *= d;
  w.consumers = std::move(consumers);
  return w;
}

}  // namespace

TEST_CASE("config resolution: const name, consumer name, consumer type, global", "[plan]") {
  OptimizationConfig cfg;
  cfg.global_config = Bits(6);
  cfg.op_type_configs["linear"] = Bits(8);
  cfg.op_name_configs["conv1"] = std::nullopt;
  cfg.op_name_configs["w_special"] = Bits(2);
  std::vector<PlanInput> ws = {
      Weight("w_linear", {64, 64}, {{"linear", "lin", "weight", {}}}),
      Weight("w_conv1", {64, 64}, {{"conv", "conv1", "weight", {}}}),
      Weight("w_conv2", {64, 64}, {{"conv", "conv2", "weight", {}}}),
      Weight("w_special", {64, 64}, {{"linear", "lin2", "weight", {}}}),
  };
  std::vector<WeightPlan> plans;
  REQUIRE(PlanWeights(ws, cfg, &plans).ok());
  CHECK(plans[0].palettize);
  CHECK(plans[0].config.nbits == 8);
  CHECK(plans[0].config_source == "op_type_configs.linear");
  CHECK_FALSE(plans[1].palettize);
  CHECK(plans[1].reason == "skipped by config (op_name_configs.conv1 is null)");
  CHECK(plans[2].config.nbits == 6);
  CHECK(plans[2].config_source == "global_config");
  CHECK(plans[3].config.nbits == 2);
  CHECK(plans[3].config_source == "op_name_configs.w_special");
}

TEST_CASE("consumers that resolve to different configs are an error", "[plan]") {
  OptimizationConfig cfg;
  cfg.global_config = Bits(6);
  cfg.op_type_configs["matmul"] = Bits(4);
  std::vector<PlanInput> ws = {
      Weight("shared", {64, 64}, {{"linear", "l1", "weight", {}}, {"matmul", "m1", "y", {}}})};
  std::vector<WeightPlan> plans;
  Status st = PlanWeights(ws, cfg, &plans);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() ==
        "config: const 'shared' is consumed by linear 'l1' (global_config) and matmul 'm1' "
        "(op_type_configs.matmul), whose configs differ");
  // Equal configs from different sources agree.
  cfg.op_type_configs["matmul"] = Bits(6);
  CHECK(PlanWeights(ws, cfg, &plans).ok());
}

TEST_CASE("skips: threshold, rank, dtype, constexpr consumers, axes, groups", "[plan]") {
  OptimizationConfig cfg;
  cfg.global_config = Bits(4);
  cfg.global_config->granularity = Granularity::kPerGroupedChannel;
  cfg.global_config->group_size = 16;
  std::vector<PlanInput> ws = {
      Weight("small", {32, 64}, {{"linear", "a", "weight", {}}}),
      Weight("vec", {4096}, {{"add", "b", "y", {}}}),
      Weight("ints", {64, 64}, {{"linear", "c", "weight", {}}}, "int32"),
      Weight("fed", {64, 64}, {{"constexpr_blockwise_shift_scale", "d", "data", {}}}),
      Weight("shared", {64, 64}, {{"linear", "e", "weight", {}}, {"matmul", "f", "y", {}}}),
      Weight("odd", {40, 64}, {{"linear", "g", "weight", {}}}),
      Weight("mm_t", {48, 64}, {{"matmul", "h", "y", {{"transpose_y", 1}}}}),
      Weight("mm", {48, 64}, {{"matmul", "i", "y", {}}}),
      Weight("deconv", {8, 32, 4, 4}, {{"conv_transpose", "j", "weight", {}}}),
  };
  std::vector<WeightPlan> p;
  REQUIRE(PlanWeights(ws, cfg, &p).ok());
  CHECK(p[0].reason == "2048 elements <= weight_threshold 2048");
  CHECK(p[1].reason == "rank 1: 1-D tensors are left uncompressed");
  CHECK(p[2].reason == "dtype int32 is not palettized (only float16, float32, int8, uint8)");
  CHECK(p[3].reason == "already feeds constexpr_blockwise_shift_scale 'd'");
  CHECK(p[4].reason == "its consumers need different channel axes");
  CHECK(p[5].reason == "channel count 40 on axis 0 is not divisible by group_size 16");
  CHECK(p[6].palettize);
  CHECK(p[6].channel_axis == 0);  // transpose_y: output channels on axis -2
  CHECK(p[7].palettize);
  CHECK(p[7].channel_axis == 1);  // output channels on axis -1
  CHECK(p[8].channel_axis == 1);  // conv_transpose: [C_in, C_out / groups, ...]
  CHECK(p[8].group_size == 16);
  CHECK(p[8].needs_ios18);
}

TEST_CASE("has_config tells a null config from one that applied but could not", "[plan]") {
  OptimizationConfig cfg;
  cfg.global_config = Bits(6);
  cfg.op_name_configs["skip_me"] = std::nullopt;
  std::vector<PlanInput> ws = {Weight("skip_me", {64, 64}, {{"linear", "a", "weight", {}}}),
                               Weight("tiny", {8, 8}, {{"linear", "b", "weight", {}}}),
                               Weight("ints", {64, 64}, {{"linear", "c", "weight", {}}}, "int32")};
  std::vector<WeightPlan> p;
  REQUIRE(PlanWeights(ws, cfg, &p).ok());
  CHECK_FALSE(p[0].has_config);  // null: skipped by the config itself
  CHECK(p[1].has_config);        // applied, but under the threshold
  CHECK_FALSE(p[1].palettize);
  CHECK_FALSE(p[2].has_config);  // never palettizable, so no config was looked up
}
