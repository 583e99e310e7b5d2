// Planning a checkpoint: which tensors of a safetensors file are module weights, of which module
// type, and which config applies to each (README "Torch checkpoints", docs/format.md section 9).
// No values are read here.
//
// The module rule (a checkpoint names tensors, not modules or their types):
//   - Candidates are tensors named `M.weight` of dtype F16, BF16, F32 or F64; M is the module.
//     Everything else (biases, buffers, integer tensors) is kept as it is, with the reason.
//   - Rank 2: Embedding when M contains "embed" (any case), else Linear. Rank 3: Conv1d.
//     Rank 4: Conv2d. Other ranks (norm weights are rank 1) are kept.
//   - Channel axis 0 for every type: Torch stores Linear and Conv weights [out, in, ...], and an
//     Embedding [tokens, dim], whose rows (one per token) are the channels, as in
//     coremltools.optimize.torch; per_grouped_channel with channel_axis 1 groups input channels.
// Which config: the longest key of module_name_configs that is M, the tensor's own name, or a
// parent module of M (a prefix ending at a '.'), then module_type_configs[type], then
// global_config. null at any level keeps the tensor as it is.
#pragma once

#include <string>
#include <vector>

#include "mil/weights.h"
#include "palettize/config.h"
#include "palettize/status.h"
#include "plan/plan.h"
#include "safetensors/safetensors.h"

namespace palettize {

struct TensorPlan {
  const SafeTensor* tensor = nullptr;
  std::string module;       // "" when not a candidate
  std::string module_type;  // "Linear", "Conv1d", "Conv2d", "Embedding"; "" when not a candidate
  TensorShape shape;        // the tensor's, with its MIL dtype (BFLOAT16 for BF16)
  WeightPlan plan;          // config_source reads "module_name_configs.M", "module_type_configs.T"
};

// Module weight `t` of `module` as the planner (plan/plan.h) sees it: read by one op named
// `module` of type `module_type`, whose output channels are on axis 0, and as float32 (the
// planner's dtype rule is the package's; the module rule above has already chosen the dtypes).
PlanInput CheckpointPlanInput(const SafeTensor& t, const std::string& module, const std::string& module_type);

// One plan per tensor, in the file's order. `config` is in the Torch schema as
// ParseTorchPalettizerConfig returns it. A module_name_configs key that no tensor of the file is
// under is an error (a typo, or a regular expression: keys are literal names), named with `file`.
Status PlanCheckpoint(const std::vector<SafeTensor>& tensors, const OptimizationConfig& config,
                      const std::string& file, std::vector<TensorPlan>* out);

}  // namespace palettize
