#include "compress/spine.h"

#include <algorithm>
#include <atomic>
#include <memory>

#include "compress/spine_alloc.h"
#include "palettizer/sweep.h"
#include "util/file.h"
#include "util/ordered_pipeline.h"

namespace palettize {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Largest first, so that no thread is left with one big weight at the end while the others
// idle. The order is fixed by the sizes (ties in the order given), so the output does not depend
// on the thread count.
void LargestFirst(const CompressReport& report, std::vector<SpineJob>* jobs) {
  std::stable_sort(jobs->begin(), jobs->end(), [&](const SpineJob& a, const SpineJob& b) {
    return report.weights[a.index].bytes_before > report.weights[b.index].bytes_before;
  });
}

// Finds each job's sensitivity and notes it in its report; non-k-means tables do not use one.
Status MatchSensitivities(SensitivitySet& set, bool by_value, std::vector<SpineJob>* jobs,
                          CompressReport* report) {
  for (SpineJob& job : *jobs) {
    WeightReport& r = report->weights[job.index];
    SensitivityMatch& match = job.sensitivity;
    PALETTIZE_RETURN_IF_ERROR(
        set.Match(r.name, *job.shape, by_value ? job.data : nullptr, job.mapped, &match));
    r.sensitivity_checked = true;
    if (match.key.empty()) {
      r.sensitivity_note = "no sensitivity tensor named '" + r.name + "' or " +
                           (by_value ? "holding its values" : "'" + r.name + ".sensitivity'") +
                           ": plain k-means";
      continue;
    }
    r.sensitivity = match.tensor;
    r.sensitivity_match = match.match;
    if (job.plan->config.mode != PalettizeMode::kKMeans) {
      r.sensitivity_note =
          std::string("not used: ") + ModeName(job.plan->config.mode) + " tables do not depend on it";
      match = SensitivityMatch();
    }
  }
  report->unused_sensitivities = set.Unused();
  return Status::OK();
}

struct Work {
  size_t job = 0;  // position in the jobs
  PalettizedWeight result;
  bool ok = false;
  std::string failure;
};

// Palettizes the jobs in parallel and hands each result to `io` in the jobs' order: each one's
// output is written as soon as it is done, so memory holds only the weights in flight.
Status Palettize(std::vector<SpineJob>& jobs, const SpineSettings& settings, SpineIO& io,
                 CompressReport* report) {
  Status status;
  std::atomic<bool> failed{false};  // an earlier write failed: finish quickly
  size_t done = 0;
  uint64_t bytes_total = 0, bytes_done = 0;
  for (const SpineJob& job : jobs) bytes_total += report->weights[job.index].bytes_before;
  auto palettize = [&](size_t k) {
    auto work = std::make_shared<Work>();
    work->job = k;
    if (failed) return work;
    const auto t0 = Clock::now();
    SpineJob& job = jobs[k];
    if (job.allocated_nbits == 0) {  // the allocation keeps it as it is
      work->failure = job.allocation_note;
      return work;
    }
    std::vector<uint8_t> aligned;
    const uint8_t* data = AlignedElements(job, &aligned);
    const ElementWeights* sens = job.sensitivity.key.empty() ? nullptr : &job.sensitivity.weights;
    if (job.allocated_nbits > 0) {
      work->result = std::move(job.allocated);
      work->ok = FillIndices(data, *job.shape, WithNBits(*job.plan, job.allocated_nbits),
                             settings.keep_decoded, &work->result, &work->failure, sens);
    } else if (job.preset) {
      work->result = *job.preset;
      work->ok = true;
    } else {
      work->ok = PalettizeWeightRaw(data, *job.shape, *job.plan, *job.allowed_nbits, settings.keep_decoded,
                                    &work->result, &work->failure, sens);
    }
    if (sens) sens->Release(0, sens->tensor->elements);
    // Done with this weight's input pages (read again only if the output copies it unchanged).
    if (job.mapped) ReleaseMappedPages(job.data, job.bytes);
    report->weights[job.index].seconds += Seconds(t0);
    return work;
  };
  auto store = [&](const std::shared_ptr<Work>& work) {
    const SpineJob& job = jobs[work->job];
    WeightReport& r = report->weights[job.index];
    ++done;
    bytes_done += r.bytes_before;
    if (settings.progress) settings.progress(done, jobs.size(), bytes_done, bytes_total);
    if (!status.ok()) return;
    if (!work->ok) {
      r.palettized = false;
      r.reason = work->failure;
      return;
    }
    const uint64_t encoded = io.EncodedBytes(job, work->result);
    if (encoded >= r.bytes_before) {
      r.palettized = false;
      r.reason = "palettized it would take " + std::to_string(encoded) + " bytes, not less than its " +
                 std::to_string(r.bytes_before);
      return;
    }
    ReportResult(work->result, &r);
    status = io.Write(job, std::move(work->result), encoded, &r);
    if (!status.ok()) failed = true;
  };
  std::vector<size_t> order(jobs.size());
  for (size_t k = 0; k < jobs.size(); ++k) order[k] = k;
  RunOrdered(order, settings.threads, palettize, store);
  return status;
}

// Commits the output with the staged texts of the run: the report, the emitted config, the plot.
Status StageAndCommit(const SpineSettings& settings, const AllocationTexts& texts, SpineIO* io,
                      std::vector<std::unique_ptr<StagedOutput>>* staged) {
  std::vector<StagedOutput*> all;
  auto stage = [&](const std::string& path, const std::string& text, const char* what) {
    if (path.empty()) return Status::OK();
    all.push_back(staged->emplace_back(std::make_unique<StagedOutput>()).get());
    return StageText(path, text, all.back(), what);
  };
  PALETTIZE_RETURN_IF_ERROR(stage(settings.report_path,
                                  settings.report_path.empty() ? "" : settings.report_json(),
                                  "cannot write report"));
  PALETTIZE_RETURN_IF_ERROR(stage(settings.emit_config_path, texts.config_yaml, "cannot write config"));
  PALETTIZE_RETURN_IF_ERROR(stage(settings.plot_path, texts.plot_svg, "cannot write plot"));
  return io ? io->Commit(all) : CommitStaged(all);
}

}  // namespace

const uint8_t* AlignedElements(const SpineJob& job, std::vector<uint8_t>* copy) {
  if (reinterpret_cast<uintptr_t>(job.data) % uintptr_t(std::max(job.shape->bits / 8, 1)) == 0)
    return job.data;
  copy->assign(job.data, job.data + job.bytes);
  return copy->data();
}

Status ValidateConfigs(const OptimizationConfig& c, const std::string& type_key,
                       const std::string& name_key) {
  if (c.global_config) PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*c.global_config, "global_config"));
  for (const auto& [k, v] : c.op_type_configs)
    if (v) PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*v, type_key + "." + k));
  for (const auto& [k, v] : c.op_name_configs)
    if (v) PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*v, name_key + "." + k));
  return Status::OK();
}

void ReportPlan(const WeightPlan& plan, uint64_t bytes, WeightReport* r) {
  r->palettized = plan.palettize;
  r->reason = plan.reason;
  r->has_config = plan.has_config;
  r->config = plan.config;
  r->config_source = plan.config_source;
  r->bytes_before = r->bytes_after = bytes;
}

void ReportResult(const PalettizedWeight& p, WeightReport* r) {
  r->nbits = p.nbits;
  r->luts = p.tables;
  r->sse = p.sse;
  r->max_abs_error = p.max_abs_error;
  r->snr_db = p.snr_db;
  r->weighted_sse = p.weighted_sse;
}

void Totals(CompressReport* report, bool bytes) {
  for (const WeightReport& w : report->weights) {
    (w.palettized ? report->palettized : report->skipped)++;
    if (!bytes) continue;
    report->bytes_before += w.bytes_before;
    report->bytes_after += w.bytes_after;
  }
}

SpineSettings SpineSettingsFrom(const CompressOptions& options, std::chrono::steady_clock::time_point start) {
  SpineSettings s;
  s.start = start;
  s.threads = options.threads;
  s.progress = options.progress;
  s.dry_run = options.dry_run;
  s.report_path = options.report_path;
  s.objective = options.objective;
  s.budget = options.budget;
  s.emit_config_path = options.emit_config_path;
  s.plot_path = options.plot_path;
  s.relative_cost = options.relative_cost;
  s.shard = options.shard;
  s.costs_out = options.costs_out;
  s.costs = options.costs;
  return s;
}

Status RunSpine(std::vector<SpineJob> jobs, const SpineSettings& settings, SpineIO& io,
                CompressReport* report) {
  LargestFirst(*report, &jobs);
  for (SpineJob& job : jobs) PALETTIZE_RETURN_IF_ERROR(io.Read(&job));
  if (settings.sensitivities)
    PALETTIZE_RETURN_IF_ERROR(
        MatchSensitivities(*settings.sensitivities, settings.match_by_value, &jobs, report));
  io.Matched(report);
  AllocationTexts texts;
  if (settings.objective) PALETTIZE_RETURN_IF_ERROR(AllocateJobs(jobs, settings, io, report, &texts));
  if (!settings.shard.empty()) return Status::OK();  // the slice's costs are written: nothing else is
  std::vector<std::unique_ptr<StagedOutput>> staged;
  if (settings.dry_run) {
    Totals(report, settings.dry_run_bytes);
    report->wall_seconds = Seconds(settings.start);
    // A dry run writes no model and no report, but the allocation's config and plot, which are
    // what a dry run with them asks for.
    SpineSettings texts_only;
    texts_only.emit_config_path = settings.emit_config_path;
    texts_only.plot_path = settings.plot_path;
    return StageAndCommit(texts_only, texts, nullptr, &staged);
  }
  PALETTIZE_RETURN_IF_ERROR(io.Begin());
  PALETTIZE_RETURN_IF_ERROR(Palettize(jobs, settings, io, report));
  PALETTIZE_RETURN_IF_ERROR(io.Finish(report));
  if (settings.meter && report->allocation && report->allocation->outputs) {
    // The output as written, before it is committed: a model the evaluator cannot run fails the
    // run and leaves nothing behind.
    std::vector<double> errors;
    PALETTIZE_RETURN_IF_ERROR(settings.meter->MeasureWritten(io.WrittenPath(), &errors));
    AllocationOutputs& out = *report->allocation->outputs;
    out.measured_worst_psnr_db = WorstPsnrDb(errors);
    out.measured_mean_psnr_db = MeanPsnrDb(errors);
    out.measured_on = "written";
  }
  Totals(report, true);
  report->wall_seconds = Seconds(settings.start);
  // The report is complete before the output is committed, and all are committed together: a
  // report (or config, or plot) that cannot be written leaves every previous file as it was.
  return StageAndCommit(settings, texts, &io, &staged);
}

}  // namespace palettize
