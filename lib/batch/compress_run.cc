// One compress run: the config, then a package, a checkpoint or a batch (palettize/compress_run.h).
#include "palettize/compress_run.h"

#include "palettize/option_names.h"

namespace palettize {

Status RunCompress(const CompressRun& run, CompressRunReport* report) {
  if (run.inputs.empty()) return Status::InvalidArgument("compress: no input");
  const OptionNames& names = GetOptionNames();
  if (run.output_dir.empty() && run.inputs.size() > 1)
    return Status::InvalidArgument("compress: " + std::to_string(run.inputs.size()) + " inputs need " +
                                   names.output_dir + " (an output names one)");
  if (run.packed && !IsCheckpointPath(run.inputs[0]))
    return Status::InvalidArgument(names.packed + ": only for .safetensors checkpoints (" + run.inputs[0] +
                                   " is not one)");
  const bool checkpoint = run.output_dir.empty() && IsCheckpointPath(run.inputs[0]);
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
  return Compress(run.inputs[0], run.output, options, &report->package);
}

}  // namespace palettize
