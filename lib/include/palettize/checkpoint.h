// Checkpoints: palettize the weights of a safetensors checkpoint (a PyTorch state_dict as
// Hugging Face and most training code save it), with coremltools.optimize.torch's config schema
// (README "Torch checkpoints", docs/format.md section 9). The tables are the ones `Compress` finds
// for a package const of the same values and config.
#pragma once

#include <string>
#include <vector>

#include "palettize/compress.h"
#include "palettize/status.h"

namespace palettize {

struct CheckpointOptions {
  // config: in the Torch schema (ParseTorchPalettizerConfig: op_type_configs holds module types,
  // op_name_configs module names); overwrite, dry_run, threads, sensitivity_file,
  // sensitivity_normalize and progress as for packages. min_target must be kAuto (a checkpoint has
  // no deployment target).
  CompressOptions compress;
  // false: each palettized tensor is written back dense, in its own dtype, with the values it
  // decodes to (the file loads into the same Torch model). true: it is replaced by its tables,
  // packed indices and scales, described in __metadata__ (docs/format.md section 9); about
  // nbits/16 of the size for 16-bit weights, but the file no longer loads as the model's
  // state_dict. Dense output streams (memory: the tensors in flight); packed output holds the
  // packed tensors until the end (memory: about the output's size).
  bool packed = false;
};

// What the module rule (docs/format.md section 9) made of one tensor.
struct CheckpointModule {
  std::string module;  // "encoder.layer.0.attention.self.query"; "" when not a module weight
  std::string type;    // "Linear", "Conv1d", "Conv2d", "Embedding"; "" when not a module weight
};

struct CheckpointReport {
  // One entry per tensor, in the file's order. program, function, consumers and shared_with are
  // empty; dtype is the file's ("BF16"); bytes_after is what --packed stores for the tensor (its
  // bytes unchanged when skipped), in both modes.
  CompressReport report;
  std::vector<CheckpointModule> modules;  // parallel to report.weights
  bool packed = false;
};

// True for a path naming a .safetensors file (any case): `compress` treats it as a checkpoint.
bool IsCheckpointPath(const std::string& path);

// Reads and checks `input`, plans every tensor, palettizes the candidates in parallel and writes
// `output` (beside, then renamed). The output does not depend on options.compress.threads.
// Errors name the file and tensor: a malformed input is InvalidInput, a config it cannot take
// (a module_name_configs key no tensor is under) InvalidArgument, as is, before any work, an
// output or report that breaks the path rules (README "Path rules"; an existing output must be a
// regular file).
Status CompressCheckpoint(const std::string& input, const std::string& output,
                          const CheckpointOptions& options, CheckpointReport* report);

// The report as JSON (docs/format.md section 9); timings left out when !with_timings.
std::string CheckpointReportToJson(const CheckpointReport& report, bool with_timings = true);

// For people: totals and unexpected skips; and a dry run's plan, a line per tensor (with_timings:
// and the seconds each palettized tensor took, after a run, for -v).
std::string CheckpointSummary(const CheckpointReport& report);
std::string CheckpointPlanText(const CheckpointReport& report, bool with_timings = false);

}  // namespace palettize
