// Planning: which config applies to each weight, resolved as coremltools resolves it (const name,
// then each consumer's op name, then its op type, then the global config), and whether the weight
// can be palettized with it at all. No values are read here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mil/weights.h"
#include "palettize/config.h"
#include "palettize/status.h"

namespace palettize {

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
std::string WhyNotPalettizable(const ConstWeight& w);

// One plan per weight, in order. Fails when the consumers of one const resolve to different
// configs (the error names the const and both consumers).
Status PlanWeights(const std::vector<ConstWeight>& weights, const OptimizationConfig& config,
                   std::vector<WeightPlan>* out);

bool SameConfig(const PalettizeConfig& a, const PalettizeConfig& b);

}  // namespace palettize
