// A package's const weights as the planner sees them (plan/plan.h): name, dtype, shape and
// consumers, with nothing of where the const lives or what it holds.
#pragma once

#include <vector>

#include "mil/weights.h"
#include "palettize/config.h"
#include "palettize/status.h"
#include "plan/plan.h"

namespace palettize {

PlanInput MilPlanInput(const ConstWeight& w);

// PlanWeights on every const of `weights`, in order.
Status PlanMilWeights(const std::vector<ConstWeight>& weights, const OptimizationConfig& config,
                      std::vector<WeightPlan>* out);

}  // namespace palettize
