// --emit-config (issue 14 item 4): an allocation as a config that reproduces it. Each allocated
// weight gets an op_name_configs (Torch: module_name_configs) entry under its config_key: the
// config planning resolved for it with the chosen nbits, or null when it is kept uncompressed.
// The base config's global and per-type entries, and its per-name entries for other keys, stay,
// so the weights the allocation does not cover resolve as before. The config_key must select
// exactly its weight: coremltools and plan.cc look a const's own name up first, and
// module_name_configs' longest key wins (docs/format.md sections 5 and 9).
#pragma once

#include <string>

#include "config/config_writer.h"
#include "palettize/allocation.h"
#include "palettize/config.h"
#include "palettize/status.h"

namespace palettize {

// `base` is the config the run planned with (flags applied). Fails (InvalidArgument) on a
// weight without a config_key or a valid chosen index, and on two weights with one key (a const
// that several functions share) but different chosen configs: a config cannot tell them apart.
Status AllocationConfig(const Allocation& allocation, const OptimizationConfig& base,
                        OptimizationConfig* out);

// AllocationConfig as YAML (ConfigYaml), after a comment line naming the objective and what the
// allocation achieved.
Status AllocationConfigYaml(const Allocation& allocation, const OptimizationConfig& base, ConfigSchema schema,
                            std::string* yaml);

// Writes AllocationConfigYaml to `path` beside, then renamed (util/staging.h), replacing an
// existing file. Errors name `path`: "c.yaml: cannot write config: <reason>".
Status WriteAllocationConfig(const std::string& path, const Allocation& allocation,
                             const OptimizationConfig& base, ConfigSchema schema);

}  // namespace palettize
