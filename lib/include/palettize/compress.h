// Compress: palettize the weights of a model package, the job of coremltools'
// palettize_weights. Data flows one way: load -> plan (config per weight) -> cluster (parallel)
// -> encode -> write -> report.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "palettize/allocation.h"
#include "palettize/config.h"
#include "palettize/inspect.h"
#include "palettize/status.h"

namespace palettize {

enum class DeploymentTarget { kAuto = 0, kIOS16 = 16, kIOS17 = 17, kIOS18 = 18 };

struct CompressOptions {
  OptimizationConfig config;
  // kAuto: keep the input's target where the configs fit in it (raising iOS15 inputs to iOS16),
  // else raise to iOS18. A forced target that cannot express a config is an error before any work.
  DeploymentTarget min_target = DeploymentTarget::kAuto;
  bool overwrite = false;  // replace an existing output package
  // Where the JSON report goes ("" = none): --report. For a batch, the batch's one report.
  std::string report_path;
  // The --config file `config` was read from ("" = none). Not read here: named so that no output
  // or report of the run lands on it (lib/util/path_rules.h).
  std::string config_file;
  bool dry_run = false;  // plan only: nothing is clustered or written
  int threads = 0;       // worker threads; 0 = one per core. The output does not depend on it.
  // A .safetensors file of per-element sensitivities ("" = none). k-means tables of the weights
  // it has a tensor for then minimise sum_i s_i (w_i - c(w_i))^2 instead of the plain error:
  // elements that matter more to the model are reproduced more closely. Tensors apply to consts by
  // name or, when the file also holds the original weights, by value (rule in
  // lib/sensitivity/sensitivity.h); other weights get plain k-means. Costs one pass over the file
  // and, per weight in flight, a buffer of its sensitivities.
  std::string sensitivity_file;
  // Normalise each sensitivity tensor as coremltools' SKMPalettizer does (divide by its maximum;
  // zeros become its smallest non-zero value; at least 1e-12; all zero: all 1), so no element is
  // ignored entirely. Off: the values are used as they are (zeros do not move the tables).
  bool sensitivity_normalize = false;
  // Called after each weight is done (from one thread at a time), for progress displays.
  std::function<void(size_t done, size_t total, uint64_t bytes_done, uint64_t bytes_total)> progress;
  // Bit allocation (palettize/allocation.h; docs/format.md section 6). Unset: every weight gets
  // its config's nbits. Set: each weight the config palettizes gets the nbits (of those its output
  // can hold, or none: kept uncompressed) that the objective chooses, at its config's
  // granularity and other settings; the config's nbits are ignored. Costs one palettization per
  // width per weight (sharing each group's distinct values), then an exact solve.
  std::optional<AllocationObjective> objective;
  double budget = 0;             // bits per weight, bytes, or dB, per `objective`
  std::string emit_config_path;  // "" = none: the allocation as a config (--config reproduces it)
  std::string plot_path;         // "" = none: the size-quality curve as an SVG
  // The allocation's cost (palettize/allocation.h): false, each weight's SSE (with
  // sensitivity_file, the sensitivity-weighted SSE); true, AllocationCost::kRelative. Only with an
  // objective, and not with sensitivity_file (its weighted mean square is not summed by the sweep).
  bool relative_cost = false;
  // A `--packed` safetensors of trained tables ("" = none; docs/format.md section 10): each const
  // a table names becomes LUT ops holding that table and its indices as they are, which must
  // decode to the const bit for bit; no other const is palettized. Not with a config, sensitivities
  // or an objective.
  std::string tables_file;
  // Allocation by measured output error (README "Bit allocation"): .npz files or folders of them,
  // one sample each, as `compare --inputs` takes them (inputs a file lacks are generated, seed 0).
  // Each candidate's cost is then the output error of the model with only that weight at that
  // candidate (AllocationCost::kOutput); after writing, the output is run on the samples and its
  // PSNR reported beside the predicted one. Packages only, through RunCompress
  // (palettize/compress_run.h: Compress alone refuses it); not with sensitivity_file, relative_cost
  // or kMinSnr. kMinOutputPsnr needs it.
  std::vector<std::string> calibration;
  std::string calibration_function = "main";
  // The measured sweep beyond one machine (README "Sharding the measured sweep"; docs/format.md
  // section 11). `shard` "K/N" (0 <= K < N), with calibration: only slice K of N of the (weight,
  // candidate) pairs is measured and written to `costs_out` (a costs file; no package, no report).
  // `costs`: the N slices' files, merged instead of measuring (calibration then optional: without
  // it no output PSNR is measured, and kMinOutputPsnr needs it); the output is the one calibration
  // alone gives, byte for byte.
  std::string shard;
  std::string costs_out;
  std::vector<std::string> costs;
  // How enable_per_channel_scale is stored in iOS18 outputs (palettize/config.h):
  // --per-channel-scale-form. Bit allocation sizes each candidate in the form it will take.
  PerChannelScaleForm per_channel_scale_form = PerChannelScaleForm::kAuto;
};

struct WeightReport {
  std::string program;
  std::string function;
  std::string name;
  std::vector<ConsumerInfo> consumers;
  bool palettized = false;
  std::string reason;               // why skipped
  bool already_compressed = false;  // held by a constexpr_* chain in the input: passed through
  bool has_config = false;          // a config applied (it may still have been skipped)
  PalettizeConfig config;
  std::string config_source;  // "global_config", "op_type_configs.linear", ...
  std::string shared_with;    // a copy of a const shared across functions: "function/name" of the
                              // first, whose new blobs it points at; "" otherwise
  std::string dtype;
  std::vector<uint64_t> shape;
  int nbits = 0;
  uint64_t luts = 0;  // number of tables
  uint64_t bytes_before = 0;
  uint64_t bytes_after = 0;  // = bytes_before when skipped
  double sse = 0;
  double max_abs_error = 0;
  double snr_db = 0;  // 10 log10(sum w^2 / sse), finite; infinite only when sse is exactly 0
  double seconds = 0;
  // With a sensitivity file, for weights it was matched against (those to palettize):
  bool sensitivity_checked = false;
  std::string sensitivity;        // the sensitivity tensor applied; "" when none did
  std::string sensitivity_match;  // "name" or "values"; "" when none applied
  std::string sensitivity_note;   // why none applied (plain k-means), or why it was not used
  double weighted_sse = 0;        // sum s_i (w_i - decoded_i)^2 when one applied
  // With a per-channel scale in an iOS18 output: "folded" or "wrapper" (else ""), the bytes of
  // both forms, and why the wrapper was kept.
  std::string scale_form;
  uint64_t scale_wrapper_bytes = 0;
  uint64_t scale_folded_bytes = 0;
  std::string scale_form_note;
};

struct CompressReport {
  std::string input;
  std::string output;
  std::vector<std::pair<std::string, int>> targets;  // per program: path, iOS version written
  std::vector<WeightReport> weights;
  uint64_t bytes_before = 0, bytes_after = 0;
  size_t palettized = 0, skipped = 0;
  double wall_seconds = 0;
  std::string sensitivity_file;  // "" without one
  bool sensitivity_normalize = false;
  std::vector<std::string> unused_sensitivities;  // keys that applied to no weight
  // Set by runs with an allocation objective (--target-bpw, --target-size, --min-snr): the
  // report's `allocation` section (docs/format.md section 6). Unset: no such section.
  std::optional<Allocation> allocation;
};

// Before any work, refuses (InvalidArgument) an output or report that breaks the path rules
// (README "Path rules"): onto or into `input`, the sensitivity or config file, or each other, or
// --force onto an existing path that is not a package.
Status Compress(const std::string& input, const std::string& output, const CompressOptions& options,
                CompressReport* report);

// The report as JSON (docs/format.md section 6). Timings are left out when !with_timings, so
// that two runs can be compared byte for byte.
std::string CompressReportToJson(const CompressReport& report, bool with_timings = true);

// A few lines for people: totals, and what was skipped and why.
std::string CompressSummary(const CompressReport& report);

// The plan of a dry run: each weight, its resolved config or why it is skipped; with_timings adds
// the seconds each palettized weight took (after a run, for -v).
std::string CompressPlanText(const CompressReport& report, bool with_timings = false);

}  // namespace palettize
