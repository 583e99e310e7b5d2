// Solving a bit allocation (palettize/allocation.h) whose candidates are known: the budget in
// bytes, the impossible budgets, and each objective's rule.
#pragma once

#include <cstdint>

#include "alloc/knapsack.h"
#include "palettize/allocation.h"
#include "palettize/status.h"

namespace palettize {

// The byte budget of a budgeted objective over `elements` weight elements: floor(bpw * elements / 8)
// for kTargetBpw, floor(budget) for kTargetSize.
uint64_t BudgetBytes(AllocationObjective objective, double budget, uint64_t elements);

// Chooses one candidate per weight of `inout` (whose weights hold their candidates, any order, each
// with at least one) and fills its objective, budget, elements, bytes, bpw, total_cost and gap.
//   kTargetBpw, kTargetSize: the least total cost within the byte budget (SolveKnapsack); gap is
//     total_cost minus the proven lower bound, 0 when the search finished within `limits`.
//   kMinSnr: each weight its smallest candidate (fewest bytes, then least cost) with
//     snr_db >= budget; gap 0. Uncompressed candidates (snr_db infinite) always qualify.
// A budget below what the smallest candidates need, or not a finite positive number, is an
// InvalidArgument before any search, naming the option (GetOptionNames()) and the smallest and
// largest reachable bits per weight.
// Sets elements, bytes, bpw and total_cost of `a` from its weights' chosen candidates.
void AllocationTotals(Allocation* a);

Status SolveAllocation(AllocationObjective objective, double budget, Allocation* inout,
                       const KnapsackLimits& limits = KnapsackLimits());

}  // namespace palettize
