// One compress run as a front end states it: the inputs, where the output goes, the config file
// and the settings given one by one. The library reads the config, chooses what the inputs are
// (a .safetensors path is a checkpoint; with an output folder, a batch of packages) and runs
// Compress, CompressCheckpoint or PlanBatch + CompressBatch + WriteBatchReport.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "palettize/batch.h"
#include "palettize/checkpoint.h"
#include "palettize/compress.h"
#include "palettize/overrides.h"
#include "palettize/status.h"

namespace palettize {

struct CompressRun {
  std::vector<std::string> inputs;  // one, unless output_dir is set
  std::string output;               // for one input
  std::string output_dir;           // "": one input to `output`; else a batch of every input
  // options.config is ignored: it is read from options.config_file (the Torch schema for a
  // checkpoint), or is DefaultOptimizationConfig() without one, with `overrides` applied.
  CompressOptions options;
  ConfigOverrides overrides;
  bool packed = false;  // CheckpointOptions::packed
  int jobs = 1;         // BatchOptions::jobs
  std::function<void(const BatchResult& result, size_t done, size_t total)> on_done;  // batch
};

struct CompressRunReport {
  enum class Kind { kPackage, kCheckpoint, kBatch };
  Kind kind = Kind::kPackage;
  CompressReport package;       // kPackage
  CheckpointReport checkpoint;  // kCheckpoint
  BatchReport batch;            // kBatch: each model's own Status is in batch.models
  // kBatch: writing options.report_path after every model is committed (not on a dry run). A
  // failure leaves the packages: each is complete.
  Status batch_report;
};

// The Status of reading the config, or of the one Compress or CompressCheckpoint, or of planning
// the batch (then no model was started). A batch that ran returns OK whatever its models did.
// Refused before any of those (InvalidArgument, named as palettize/option_names.h says): no input,
// several inputs without output_dir, packed with an input that is not a checkpoint; an
// emit_config_path, plot_path or relative_cost without an objective; relative_cost with a
// sensitivity_file; an objective with an nbits override; with
// output_dir, a target_size objective, an emit_config_path or a plot_path.
Status RunCompress(const CompressRun& run, CompressRunReport* report);

}  // namespace palettize
