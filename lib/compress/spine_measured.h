// Allocation by measured output error in the spine (issue 15 item 5): every palettized candidate
// of every swept weight decoded from its kept tables and put in place of its const while the model
// runs on the calibration samples (OutputMeter, compress/output_meter.h); its cost is the summed
// normalised output error. Then, for kMinOutputPsnr, the search along the Lagrangian path
// (alloc/lagrange_path.h), each probe the whole allocation measured the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "alloc/candidates.h"
#include "compress/output_meter.h"
#include "compress/spine.h"
#include "palettize/allocation.h"
#include "palettize/status.h"

namespace palettize {

// One swept weight as the measured allocation sees it.
struct MeasuredWeight {
  const SpineJob* job = nullptr;
  const std::string* const_name = nullptr;  // the const's output name in the program
  WeightSweep* sweep = nullptr;
  // Per candidate, per (sample, output) pair: the normalised error with only this weight at this
  // candidate (the uncompressed candidate's all 0).
  std::vector<std::vector<double>> errors;
};

// One measurement of the sweep: candidate `candidate` (palettized) of weight `weight`.
struct MeasuredTask {
  size_t weight = 0, candidate = 0;
};

// Every palettized candidate of every weight, the weights in the order given (model order), each
// one's candidates in theirs: task t of the sweep is the t-th. A sharded sweep (spine_costs.h)
// numbers its slices by this.
std::vector<MeasuredTask> MeasuredTasks(const std::vector<MeasuredWeight>& weights);

// Sets every weight's errors to one 0 per pair for every candidate; then measures the tasks t with
// t % count == index (all of them by default; in parallel, `threads` workers, each result in its own
// slot, so the same for any count).
Status MeasureCandidates(std::vector<MeasuredWeight>& weights, OutputMeter& meter, int threads,
                         uint64_t index = 0, uint64_t count = 1);

// Sets each candidate's cost to the sum of its errors (a non-finite sum: the largest cost).
void SetMeasuredCosts(std::vector<MeasuredWeight>& weights);

// The per-pair errors the costs predict for `chosen` (one candidate per weight): the sums of the
// chosen candidates' errors (the errors of small perturbations add).
std::vector<double> PredictedErrors(const std::vector<MeasuredWeight>& weights,
                                    const std::vector<int>& chosen);

// The per-pair errors measured with every weight at its `chosen` candidate at once.
Status MeasureAllocation(const std::vector<MeasuredWeight>& weights, const std::vector<int>& chosen,
                         OutputMeter& meter, std::vector<double>* errors);

// kMinOutputPsnr: the smallest allocation on the Lagrangian path of the measured costs whose
// worst pair PSNR is >= `min_psnr_db`, by bisection (the top, every weight at its largest
// palettized candidate, probed first: InvalidArgument naming `option` when it misses). Sets each
// weight's chosen candidate in `a` (weights in the same order) and out->probes, path_steps.
Status SearchMinOutputPsnr(const std::vector<MeasuredWeight>& weights, double min_psnr_db,
                           const std::string& option, OutputMeter& meter, Allocation* a,
                           AllocationOutputs* out);

}  // namespace palettize
