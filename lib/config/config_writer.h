// An OptimizationConfig written as YAML in either schema the parser reads (docs/format.md
// sections 5 and 9), such that ParseOptimizationConfig / ParseTorchPalettizerConfig read back the
// same configs, and coremltools' OptimizationConfig.from_yaml (coremltools' schema) or
// coremltools.optimize.torch's config classes (the Torch schema) accept it unless a config uses
// an extension of ours (lut_dtype in coremltools' schema; mode, weight_threshold in the Torch one).
//
//   config_type: OpPalettizerConfig          # coremltools' schema only
//   global_config:                           # or: global_config: null
//     mode: kmeans
//     nbits: 4                               # n_bits in the Torch schema
//     ...
//   op_type_configs:                         # module_type_configs in the Torch schema
//     "linear": null
//   op_name_configs:                         # module_name_configs in the Torch schema; {} if none
//     "conv_1_weight":
//       ...
//
// The text depends only on the config: keys sorted (std::map order), names always double-quoted,
// every field of coremltools' schema written (Torch: the fields that differ from its defaults,
// and n_bits and granularity always).
#pragma once

#include <string>

#include "palettize/config.h"
#include "palettize/status.h"

namespace palettize {

enum class ConfigSchema {
  kCoreml,  // coremltools' OptimizationConfig (packages)
  kTorch,   // coremltools.optimize.torch's PostTrainingPalettizerConfig (checkpoints)
};

// Fails (InvalidArgument) for what the schema cannot hold: a name that is not valid UTF-8 (YAML
// text is Unicode), a config that breaks the rules of ValidatePalettizeConfig, or in the Torch
// schema a channel_axis other than 0, 1 or unset, or cluster_dim > 1 with a per-channel scale.
// `comment`, when not empty, is written first as "# " lines.
Status ConfigYaml(const OptimizationConfig& config, ConfigSchema schema, const std::string& comment,
                  std::string* yaml);

}  // namespace palettize
