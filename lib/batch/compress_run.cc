// One compress run: the config, then a package, a checkpoint or a batch (palettize/compress_run.h).
#include "palettize/compress_run.h"

#include "calib/calibration_meter.h"
#include "compress/compress_package.h"
#include "compress/spine_alloc.h"
#include "palettize/option_names.h"

namespace palettize {
namespace {

const std::string& ObjectiveName(AllocationObjective objective) {
  const OptionNames& names = GetOptionNames();
  switch (objective) {
    case AllocationObjective::kTargetBpw: return names.target_bpw;
    case AllocationObjective::kTargetSize: return names.target_size;
    case AllocationObjective::kMinSnr: return names.min_snr;
    case AllocationObjective::kMinOutputPsnr: return names.min_output_psnr;
  }
  return names.target_bpw;
}

// What a run with an allocation objective may not also ask for. Whether the budget is reachable is
// the spine's to say, which knows the model.
Status CheckAllocationRun(const CompressRun& run) {
  const CompressOptions& o = run.options;
  const OptionNames& names = GetOptionNames();
  // The options' own rules (what needs an objective, what conflicts, the budget's value), as
  // Compress and CompressCheckpoint check them; then what only a run (flags, a batch) can break.
  PALETTIZE_RETURN_IF_ERROR(ValidateAllocationOptions(o, run.output));
  if (!o.objective) return Status::OK();
  const std::string& objective = ObjectiveName(*o.objective);
  if (run.overrides.nbits)
    return Status::InvalidArgument(objective + ": conflicts with " + names.nbits +
                                   " (the allocation chooses each weight's nbits)");
  if (!run.output_dir.empty()) {
    // Each model of a batch gets its own allocation; one size or one emitted file for all of
    // them would not mean anything.
    if (*o.objective == AllocationObjective::kTargetSize)
      return Status::InvalidArgument(objective + ": one size for every model of " + names.output_dir +
                                     " is not supported; use " + names.target_bpw);
    if (!o.emit_config_path.empty())
      return Status::InvalidArgument(names.emit_config + ": not with " + names.output_dir);
    if (!o.plot_path.empty()) return Status::InvalidArgument(names.plot + ": not with " + names.output_dir);
  }
  return Status::OK();
}

}  // namespace

Status RunCompress(const CompressRun& run, CompressRunReport* report) {
  if (run.inputs.empty()) return Status::InvalidArgument("compress: no input");
  const OptionNames& names = GetOptionNames();
  if (run.output_dir.empty() && run.inputs.size() > 1)
    return Status::InvalidArgument("compress: " + std::to_string(run.inputs.size()) + " inputs need " +
                                   names.output_dir + " (an output names one)");
  if (run.packed && !IsCheckpointPath(run.inputs[0]))
    return Status::InvalidArgument(names.packed + ": only for .safetensors checkpoints (" + run.inputs[0] +
                                   " is not one)");
  PALETTIZE_RETURN_IF_ERROR(CheckAllocationRun(run));
  if (!run.options.tables_file.empty()) {
    // Trained tables are the whole config: nothing else may choose nbits or weights.
    std::string other;
    if (!run.options.config_file.empty())
      other = names.config;
    else if (!run.overrides.empty())
      other = "palettization flags";
    else if (!run.output_dir.empty())
      other = names.output_dir;
    else if (IsCheckpointPath(run.inputs[0]))
      other = "a checkpoint input (" + run.inputs[0] + ")";
    if (!other.empty()) return Status::InvalidArgument(names.tables + ": not with " + other);
  }
  const bool checkpoint = run.output_dir.empty() && IsCheckpointPath(run.inputs[0]);
  if (!run.options.calibration.empty() || !run.options.costs.empty()) {
    // The samples run one package; a checkpoint has no program to run.
    const std::string& name = run.options.calibration.empty() ? names.costs : names.calibration;
    if (!run.output_dir.empty()) return Status::InvalidArgument(name + ": not with " + names.output_dir);
    if (checkpoint)
      return Status::InvalidArgument(name + ": only for packages (" + run.inputs[0] +
                                     " is a checkpoint, which palettize cannot run)");
  }
  CompressOptions options = run.options;
  PALETTIZE_RETURN_IF_ERROR(ResolveConfig(options.config_file, checkpoint, run.overrides, &options.config));
  if (!run.output_dir.empty()) {
    report->kind = CompressRunReport::Kind::kBatch;
    std::vector<BatchItem> items;
    PALETTIZE_RETURN_IF_ERROR(PlanBatch(run.inputs, run.output_dir, options, &items));
    BatchOptions batch;
    batch.compress = options;
    batch.jobs = run.jobs;
    batch.on_done = run.on_done;
    CompressBatch(items, batch, &report->batch);
    if (!options.dry_run && !options.report_path.empty())
      report->batch_report = WriteBatchReport(options.report_path, report->batch);
    return Status::OK();
  }
  if (checkpoint) {
    report->kind = CompressRunReport::Kind::kCheckpoint;
    CheckpointOptions ck;
    ck.compress = options;
    ck.packed = run.packed;
    return CompressCheckpoint(run.inputs[0], run.output, ck, &report->checkpoint);
  }
  report->kind = CompressRunReport::Kind::kPackage;
  if (options.calibration.empty()) return Compress(run.inputs[0], run.output, options, &report->package);
  CalibrationMeter meter(run.inputs[0], options.calibration, options.calibration_function);
  return CompressPackage(run.inputs[0], run.output, options, &meter, &report->package);
}

}  // namespace palettize
