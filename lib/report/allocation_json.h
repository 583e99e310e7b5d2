// The report's `allocation` section (docs/format.md section 6): an Allocation as JSON, for the
// package and the checkpoint report alike.
#pragma once

#include <nlohmann/json.hpp>

#include "palettize/allocation.h"

namespace palettize {

// "target_bpw", "target_size", "min_snr"; "sse", "sensitivity".
const char* ObjectiveName(AllocationObjective objective);
const char* CostName(AllocationCost cost);

nlohmann::ordered_json AllocationJsonValue(const Allocation& allocation);

}  // namespace palettize
