// Planning: which config applies to each weight, resolved as coremltools resolves it (const name,
// then each consumer's op name, then its op type, then the global config), and whether the weight
// can be palettized with it at all. No values are read here.
//
// The planner sees a weight only as a PlanInput: its name, dtype, shape and the facts about its
// consumers that coremltools' rule uses. A package's const (compress/mil_plan.h) and a
// checkpoint's tensor with its module (checkpoint/checkpoint_plan.h) both reduce to one, so this
// folder needs nothing of MIL or of either file format.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "palettize/config.h"
#include "palettize/status.h"

namespace palettize {

// An op that reads the weight.
struct PlanConsumer {
  std::string op_type;  // "linear", "conv", "matmul", "constexpr_lut_to_dense", or a module type
  std::string op_name;
  std::string input;  // the consumer's input that the weight feeds ("weight", "x", "y", ...)
  // Its scalar constant inputs that choosing a channel axis reads: matmul's transpose_x and
  // transpose_y, conv's groups.
  std::map<std::string, double> scalar_inputs;
};

struct PlanInput {
  std::string name;
  std::string dtype;  // a MIL dtype name; float16, float32, int8 and uint8 can be palettized
  std::vector<uint64_t> dims;
  uint64_t elements = 0;
  std::vector<PlanConsumer> consumers;
};

struct WeightPlan {
  bool palettize = false;
  std::string reason;         // why not, when !palettize
  std::string config_source;  // "op_name_configs.conv1", "op_type_configs.linear", "global_config"
  bool has_config = false;    // a non-null config resolved for it (it may still be skipped)
  PalettizeConfig config;     // the resolved config, when has_config
  int channel_axis = 0;       // non-negative; groups and vectors run along it
  uint64_t group_size = 0;    // channels per table along channel_axis (all of them for per_tensor)
  bool needs_ios18 = false;   // the config cannot be written in the iOS16 op form
};

// The coremltools candidate rule, minus the threshold: "" when `w` could be palettized, else why
// not (dtype, rank, no consumer, already feeding a constexpr op).
std::string WhyNotPalettizable(const PlanInput& w);

// One plan per weight, in order. Fails when the consumers of one const resolve to different
// configs (the error names the const and both consumers).
Status PlanWeights(const std::vector<PlanInput>& weights, const OptimizationConfig& config,
                   std::vector<WeightPlan>* out);

bool SameConfig(const PalettizeConfig& a, const PalettizeConfig& b);

}  // namespace palettize
