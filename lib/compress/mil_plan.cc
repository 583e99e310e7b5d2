#include "compress/mil_plan.h"

#include "mil/dtype.h"

namespace palettize {

PlanInput MilPlanInput(const ConstWeight& w) {
  PlanInput in;
  in.name = w.name;
  in.dtype = DTypeName(w.shape.mil_type);
  in.dims = w.shape.dims;
  in.elements = w.shape.elements;
  for (const Consumer& c : w.consumers)
    in.consumers.push_back({c.op_type, c.op_name, c.input, c.scalar_inputs});
  return in;
}

Status PlanMilWeights(const std::vector<ConstWeight>& weights, const OptimizationConfig& config,
                      std::vector<WeightPlan>* out) {
  std::vector<PlanInput> inputs;
  inputs.reserve(weights.size());
  for (const ConstWeight& w : weights) inputs.push_back(MilPlanInput(w));
  return PlanWeights(inputs, config, out);
}

}  // namespace palettize
