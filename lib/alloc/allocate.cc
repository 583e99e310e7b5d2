#include "alloc/allocate.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "palettize/option_names.h"

namespace palettize {

namespace {

std::string OptionName(AllocationObjective objective) {
  const OptionNames& names = GetOptionNames();
  switch (objective) {
    case AllocationObjective::kTargetBpw: return names.target_bpw;
    case AllocationObjective::kTargetSize: return names.target_size;
    case AllocationObjective::kMinSnr: return names.min_snr;
    default: return names.min_output_psnr;
  }
}

double Bpw(uint64_t bytes, uint64_t elements) {
  return elements ? 8.0 * double(bytes) / double(elements) : 0;
}

}  // namespace

void AllocationTotals(Allocation* a) {
  a->elements = 0;
  for (const WeightAllocation& w : a->weights) a->elements += w.elements;
  a->bytes = 0;
  a->total_cost = 0;
  for (const WeightAllocation& w : a->weights) {
    a->bytes += w.candidates[size_t(w.chosen)].bytes;
    a->total_cost += w.candidates[size_t(w.chosen)].cost;
  }
  a->bpw = Bpw(a->bytes, a->elements);
}

uint64_t BudgetBytes(AllocationObjective objective, double budget, uint64_t elements) {
  const long double bytes =
      objective == AllocationObjective::kTargetBpw ? (long double)budget * elements / 8 : budget;
  if (!(bytes >= 0)) return 0;
  if (bytes >= (long double)std::numeric_limits<uint64_t>::max()) return std::numeric_limits<uint64_t>::max();
  return uint64_t(std::floor(bytes));
}

Status SolveAllocation(AllocationObjective objective, double budget, Allocation* inout,
                       const KnapsackLimits& limits) {
  Allocation& a = *inout;
  const std::string option = OptionName(objective);
  a.objective = objective;
  a.budget = budget;
  a.elements = 0;
  a.gap = 0;
  for (const WeightAllocation& w : a.weights) {
    if (w.candidates.empty())
      return Status::InvalidArgument("weight '" + w.name + "': no candidate to allocate from");
    a.elements += w.elements;
  }
  if (objective == AllocationObjective::kMinOutputPsnr)
    return Status::InvalidArgument(option + ": chosen by measuring outputs, not by SolveAllocation");
  const bool budgeted = objective != AllocationObjective::kMinSnr;
  if (!std::isfinite(budget) || (budgeted && !(budget > 0)))
    return Status::InvalidArgument(option + " " + std::to_string(budget) + ": not a finite positive number");

  if (!budgeted) {
    for (WeightAllocation& w : a.weights) {
      w.chosen = -1;
      for (size_t j = 0; j < w.candidates.size(); ++j) {
        const AllocationCandidate& c = w.candidates[j];
        if (!(c.nbits == 0 || c.snr_db >= budget)) continue;
        const AllocationCandidate* best = w.chosen < 0 ? nullptr : &w.candidates[size_t(w.chosen)];
        if (!best || c.bytes < best->bytes || (c.bytes == best->bytes && c.cost < best->cost))
          w.chosen = int(j);
      }
      if (w.chosen < 0)
        return Status::InvalidArgument("weight '" + w.name + "': no uncompressed candidate to fall back on");
    }
    AllocationTotals(&a);
    return Status::OK();
  }

  std::vector<std::vector<KnapsackOption>> curves(a.weights.size());
  for (size_t i = 0; i < a.weights.size(); ++i)
    for (const AllocationCandidate& c : a.weights[i].candidates) curves[i].push_back({c.bytes, c.cost});
  uint64_t smallest = 0, largest = 0;
  KnapsackRange(curves, &smallest, &largest);
  const uint64_t bytes = BudgetBytes(objective, budget, a.elements);
  if (bytes < smallest) {
    char text[200];
    if (objective == AllocationObjective::kTargetBpw)
      std::snprintf(text, sizeof text, "%s %g: below the smallest reachable %.2f bpw (largest %.2f)",
                    option.c_str(), budget, Bpw(smallest, a.elements), Bpw(largest, a.elements));
    else
      std::snprintf(text, sizeof text,
                    "%s %.0f bytes: below the smallest reachable %llu bytes, %.2f bpw (largest %llu bytes, "
                    "%.2f bpw)",
                    option.c_str(), std::floor(budget), (unsigned long long)smallest,
                    Bpw(smallest, a.elements), (unsigned long long)largest, Bpw(largest, a.elements));
    return Status::InvalidArgument(text);
  }
  KnapsackSolution s;
  if (!SolveKnapsack(curves, bytes, limits, &s))
    return Status::InvalidArgument(option + ": internal error: no assignment within the budget");
  for (size_t i = 0; i < a.weights.size(); ++i) a.weights[i].chosen = s.chosen[i];
  AllocationTotals(&a);
  a.gap = s.proven ? 0.0 : std::max(0.0, a.total_cost - s.lower_bound);
  return Status::OK();
}

}  // namespace palettize
