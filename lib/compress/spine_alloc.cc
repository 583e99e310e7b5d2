#include "compress/spine_alloc.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "alloc/allocate.h"
#include "alloc/costs_file.h"
#include "compress/spine_costs.h"
#include "compress/spine_measured.h"
#include "config/allocation_config.h"
#include "palettize/option_names.h"
#include "report/allocation_plot.h"
#include "util/file.h"
#include "util/ordered_pipeline.h"

namespace palettize {

namespace {

struct Swept {
  SweepOptions options;
  std::string config_key;
  WeightSweep sweep;
  Status status;
};

// Sweeps every job in parallel, largest first (the jobs' order); each result stays in `swept`.
void SweepJobs(std::vector<SpineJob>& jobs, const SpineSettings& settings, std::vector<Swept>* swept,
               CompressReport* report) {
  std::vector<size_t> order(jobs.size());
  for (size_t k = 0; k < jobs.size(); ++k) order[k] = k;
  auto sweep = [&](size_t k) {
    const auto t0 = std::chrono::steady_clock::now();
    const SpineJob& job = jobs[k];
    Swept& s = (*swept)[k];
    std::vector<uint8_t> copy;
    const uint8_t* data = AlignedElements(job, &copy);
    const ElementWeights* sens = job.sensitivity.key.empty() ? nullptr : &job.sensitivity.weights;
    s.status = SweepWeight(data, *job.shape, *job.plan, sens, s.options, &s.sweep);
    // Read again, for the chosen width only, when the weight is written.
    if (sens) sens->Release(0, sens->tensor->elements);
    if (job.mapped) ReleaseMappedPages(job.data, job.bytes);
    report->weights[job.index].seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return k;
  };
  RunOrdered(order, settings.threads, sweep, [](size_t) {});
}

}  // namespace

Status ValidateAllocationOptions(const CompressOptions& o, const std::string& output) {
  const OptionNames& names = GetOptionNames();
  PALETTIZE_RETURN_IF_ERROR(ValidateCostsOptions(o, output));
  // Merged costs stand for measured ones: the same rules.
  const bool calibrated = !o.calibration.empty() || !o.costs.empty();
  const std::string& measured_by = o.calibration.empty() ? names.costs : names.calibration;
  if (!o.objective) {
    for (const auto& [path, name] :
         {std::pair{&o.emit_config_path, &names.emit_config}, std::pair{&o.plot_path, &names.plot}})
      if (!path->empty())
        return Status::InvalidArgument(*name + ": needs an allocation objective (" + names.target_bpw + ", " +
                                       names.target_size + " or " + names.min_snr + ")");
    if (o.relative_cost)
      return Status::InvalidArgument(names.relative_cost + ": needs an allocation objective (" +
                                     names.target_bpw + ", " + names.target_size + " or " + names.min_snr +
                                     ")");
    if (calibrated)
      return Status::InvalidArgument(measured_by + ": needs an allocation objective (" + names.target_bpw +
                                     ", " + names.target_size + " or " + names.min_output_psnr + ")");
    return Status::OK();
  }
  // The sweep does not sum the sensitivity-weighted mean square a relative weighted cost needs.
  if (o.relative_cost && !o.sensitivity_file.empty())
    return Status::InvalidArgument(names.relative_cost + ": not with " + names.sensitivity);
  if (*o.objective == AllocationObjective::kMinOutputPsnr && o.calibration.empty())
    return Status::InvalidArgument(names.min_output_psnr + ": needs " + names.calibration +
                                   " (the samples to measure the outputs on)");
  if (calibrated) {
    // Measured costs replace the others; --min-snr chooses by each weight's SNR, not by a cost.
    if (!o.sensitivity_file.empty())
      return Status::InvalidArgument(measured_by + ": not with " + names.sensitivity);
    if (o.relative_cost) return Status::InvalidArgument(measured_by + ": not with " + names.relative_cost);
    if (*o.objective == AllocationObjective::kMinSnr)
      return Status::InvalidArgument(measured_by + ": not with " + names.min_snr + " (use " +
                                     names.min_output_psnr + ")");
  }
  const std::string& name = *o.objective == AllocationObjective::kTargetBpw    ? names.target_bpw
                            : *o.objective == AllocationObjective::kTargetSize ? names.target_size
                            : *o.objective == AllocationObjective::kMinSnr     ? names.min_snr
                                                                               : names.min_output_psnr;
  if (!std::isfinite(o.budget))
    return Status::InvalidArgument(name + ": " + std::to_string(o.budget) + " is not a finite number");
  const bool budgeted =
      *o.objective == AllocationObjective::kTargetBpw || *o.objective == AllocationObjective::kTargetSize;
  if (budgeted && !(o.budget > 0))
    return Status::InvalidArgument(name + ": " + std::to_string(o.budget) + " is not greater than 0");
  return Status::OK();
}

namespace {

// Every candidate's cost measured (or merged from costs files; or only a slice measured, written,
// and nothing solved), then kMinOutputPsnr's search or the solve, and the outputs the costs predict
// (and, in a dry run with a meter, those measured by substitution).
Status SolveMeasured(std::vector<MeasuredWeight>& measured, const SpineSettings& settings,
                     const std::string& input, Allocation* a) {
  OutputMeter* meter = settings.meter;
  if (meter) PALETTIZE_RETURN_IF_ERROR(meter->Prepare(settings.threads));
  AllocationOutputs out;
  if (!settings.costs.empty()) {
    PALETTIZE_RETURN_IF_ERROR(MergeCosts(measured, settings, meter, input, &out.samples, &out.outputs));
  } else {
    uint64_t index = 0, count = 1;
    if (!settings.shard.empty())
      PALETTIZE_RETURN_IF_ERROR(ParseShard(settings.shard, GetOptionNames().shard, &index, &count));
    PALETTIZE_RETURN_IF_ERROR(MeasureCandidates(measured, *meter, settings.threads, index, count));
    if (!settings.shard.empty()) return WriteCostsSlice(measured, settings, *meter);
    out.samples = meter->Samples();
    out.outputs = meter->Outputs();
  }
  SetMeasuredCosts(measured);
  for (size_t i = 0; i < measured.size(); ++i) a->weights[i].candidates = measured[i].sweep->candidates;
  if (*settings.objective == AllocationObjective::kMinOutputPsnr) {
    a->objective = *settings.objective;
    a->budget = settings.budget;
    a->gap = 0;
    PALETTIZE_RETURN_IF_ERROR(
        SearchMinOutputPsnr(measured, settings.budget, GetOptionNames().min_output_psnr, *meter, a, &out));
    AllocationTotals(a);
  } else {
    PALETTIZE_RETURN_IF_ERROR(SolveAllocation(*settings.objective, settings.budget, a));
  }
  std::vector<int> chosen;
  for (const WeightAllocation& w : a->weights) chosen.push_back(w.chosen);
  const std::vector<double> predicted = PredictedErrors(measured, chosen);
  out.predicted_worst_psnr_db = WorstPsnrDb(predicted);
  out.predicted_mean_psnr_db = MeanPsnrDb(predicted);
  if (settings.dry_run && meter) {
    std::vector<double> errors;
    PALETTIZE_RETURN_IF_ERROR(MeasureAllocation(measured, chosen, *meter, &errors));
    out.measured_worst_psnr_db = WorstPsnrDb(errors);
    out.measured_mean_psnr_db = MeanPsnrDb(errors);
    out.measured_on = "substituted";
  }
  a->outputs = std::move(out);
  return Status::OK();
}

}  // namespace

Status AllocateJobs(std::vector<SpineJob>& jobs, const SpineSettings& settings, SpineIO& io,
                    CompressReport* report, AllocationTexts* texts) {
  // Measured here, or merged from the costs files of a sharded sweep (spine_costs.h).
  const bool by_measure = settings.meter || !settings.costs.empty();
  const AllocationCost cost = by_measure               ? AllocationCost::kOutput
                              : settings.relative_cost ? AllocationCost::kRelative
                              : settings.sensitivities ? AllocationCost::kSensitivity
                                                       : AllocationCost::kSse;
  std::vector<Swept> swept(jobs.size());
  for (size_t k = 0; k < jobs.size(); ++k) {
    Swept& s = swept[k];
    io.AllocationFacts(jobs[k], &s.options, &s.config_key);
    s.options.dense_bytes = report->weights[jobs[k].index].bytes_before;
    s.options.cost = cost;
  }
  SweepJobs(jobs, settings, &swept, report);
  for (const Swept& s : swept) PALETTIZE_RETURN_IF_ERROR(s.status);

  // The weights in model order (the report's), as the allocation lists them.
  std::vector<size_t> by_index(jobs.size());
  for (size_t k = 0; k < jobs.size(); ++k) by_index[k] = k;
  std::sort(by_index.begin(), by_index.end(),
            [&](size_t a, size_t b) { return jobs[a].index < jobs[b].index; });
  Allocation a;
  a.cost = cost;
  std::vector<MeasuredWeight> measured;
  for (size_t k : by_index) {
    const SpineJob& job = jobs[k];
    WeightAllocation w;
    w.name = report->weights[job.index].name;
    w.config_key = swept[k].config_key;
    w.config = job.plan->config;
    w.elements = job.shape->elements;
    w.candidates = swept[k].sweep.candidates;
    a.weights.push_back(std::move(w));
    if (!by_measure) continue;
    const std::string* name = io.ConstOutputName(job);
    if (name == nullptr) return Status::InvalidArgument(GetOptionNames().calibration + ": only for packages");
    measured.push_back({&job, name, &swept[k].sweep, {}});
  }
  if (by_measure) {
    PALETTIZE_RETURN_IF_ERROR(SolveMeasured(measured, settings, report->input, &a));
    if (!settings.shard.empty()) return Status::OK();
  } else
    PALETTIZE_RETURN_IF_ERROR(SolveAllocation(*settings.objective, settings.budget, &a));

  std::vector<bool> palettized(report->weights.size(), false);
  for (size_t n = 0; n < by_index.size(); ++n) {
    SpineJob& job = jobs[by_index[n]];
    WeightSweep& sweep = swept[by_index[n]].sweep;
    const size_t chosen = size_t(a.weights[n].chosen);
    const AllocationCandidate& c = sweep.candidates[chosen];
    WeightReport& r = report->weights[job.index];
    job.allocated_nbits = c.nbits;
    if (c.nbits == 0) {
      job.allocation_note = sweep.note.empty() ? "allocation: kept uncompressed" : sweep.note;
      r.palettized = false;
      r.reason = job.allocation_note;
    } else {
      job.allocated = std::move(sweep.results[chosen]);
      palettized[job.index] = true;
      r.config.nbits = c.nbits;
      ReportResult(job.allocated, &r);
      r.bytes_after = c.bytes;
    }
    sweep = WeightSweep();  // the other widths' tables are done with
  }
  io.Allocated(palettized);
  if (!settings.emit_config_path.empty())
    PALETTIZE_RETURN_IF_ERROR(
        AllocationConfigYaml(a, *settings.config, settings.schema, &texts->config_yaml));
  if (!settings.plot_path.empty()) texts->plot_svg = AllocationPlotSvg(a);
  report->allocation = std::move(a);
  return Status::OK();
}

}  // namespace palettize
