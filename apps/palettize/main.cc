// palettize: library plus main(). For each subcommand this file parses the flags into the
// library's option structs (a config flag into palettize::ConfigOverrides), makes one library call
// (Inspect, RunCompress, Decompress, Compare) and maps the returned Status to an exit code. It holds
// no policy and touches no file: the library reads the config, chooses the input kind, checks the
// paths, stages, writes the report and commits the outputs. What stays here is the CLI's own: flag
// combinations that are usage errors, the flag names library messages use (InstallFlagNames), the
// progress bar and summaries people read, and the exit codes. Only this file prints errors.
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "palettize/batch.h"
#include "palettize/checkpoint.h"
#include "palettize/compare.h"
#include "palettize/compress.h"
#include "palettize/compress_run.h"
#include "palettize/config.h"
#include "palettize/decompress.h"
#include "palettize/eval.h"
#include "palettize/inspect.h"
#include "palettize/option_names.h"
#include "palettize/overrides.h"
#include "palettize/signals.h"
#include "palettize/status.h"

namespace {

// Exit codes, documented in --help and README.md.
constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitInvalidInput = 2;
constexpr int kExitIO = 3;
constexpr int kExitQuality = 4;  // compare --min-snr, --min-output-psnr: below the threshold

// Errors are one line: control characters that a damaged file put into a name the message
// quotes (a newline in a blob file name) are shown as \xNN.
std::string OneLine(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c != 0x7f) {
      out += char(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02X", c);
      out += hex;
    }
  }
  return out;
}

// Messages for people (errors, summaries, the -v plan, batch progress) go to stderr through one
// logger: -q shows errors only, the default info, -v debug. The pattern is the bare message, so an
// error stays the one line "palettize: <message>". The library logs nothing; it returns reports.
spdlog::logger& Log() {
  static const std::shared_ptr<spdlog::logger> log = [] {
    auto l = std::make_shared<spdlog::logger>("palettize", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%v");
    l->set_level(spdlog::level::info);
    return l;
  }();
  return *log;
}

// Logs `text`, lines that the library ends with a newline, without adding a blank line.
void Say(spdlog::level::level_enum level, std::string text) {
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty()) Log().log(level, "{}", text);
}

void Error(const std::string& message) { Log().error("palettize: {}", OneLine(message)); }

int ExitCode(const palettize::Status& st) {
  switch (st.code()) {
    case palettize::Status::Code::kOk: return kExitOk;
    case palettize::Status::Code::kInvalidArgument: return kExitUsage;
    case palettize::Status::Code::kInvalidInput: return kExitInvalidInput;
    case palettize::Status::Code::kIOError: return kExitIO;
  }
  return kExitInvalidInput;
}

int Fail(const palettize::Status& st) {
  Error(st.message());
  return ExitCode(st);
}

// Prints `text` on stdout; a failed write (a closed pipe, a full disk) is an I/O error.
palettize::Status PrintOut(const std::string& text) {
  std::cout << text;
  std::cout.flush();
  return std::cout ? palettize::Status::OK() : palettize::Status::IOError("standard output: write failed");
}

// compress's config flags: each value, and its CLI11 option, which says whether it was given.
struct ConfigFlags {
  std::string mode_name, granularity_name, lut_dtype_name;
  int nbits_value = 6;
  int64_t group_size_value = 32, channel_axis_value = 0, cluster_dim_value = 1, weight_threshold_value = 2048;
  bool per_channel_scale_value = false;
  CLI::Option *mode = nullptr, *nbits = nullptr, *granularity = nullptr, *group_size = nullptr,
              *channel_axis = nullptr, *cluster_dim = nullptr, *per_channel_scale = nullptr,
              *lut_dtype = nullptr, *weight_threshold = nullptr;
};

// A named value given to `flag`, parsed by the library; its error is prefixed with the flag.
// CLI11 has checked it against the same names already, for --help and its usage message.
template <typename T, typename Out>
palettize::Status ParseFlag(const CLI::Option* flag, const std::string& text,
                            palettize::Status (*parse)(const std::string&, T*), Out* out) {
  T value{};
  palettize::Status st = parse(text, &value);
  if (!st.ok()) return st.WithContext(flag->get_name());
  *out = value;
  return st;
}

template <typename T>
void SetIfGiven(const CLI::Option* flag, const T& value, std::optional<T>* out) {
  if (flag->count()) *out = value;
}

// The flags given become overrides of the config's global_config (palettize::ApplyOverrides).
palettize::Status FlagsToOverrides(const ConfigFlags& f, palettize::ConfigOverrides* o) {
  palettize::Status st;
  if (f.mode->count()) st = ParseFlag(f.mode, f.mode_name, palettize::ParseMode, &o->mode);
  if (st.ok() && f.granularity->count())
    st = ParseFlag(f.granularity, f.granularity_name, palettize::ParseGranularity, &o->granularity);
  if (st.ok() && f.lut_dtype->count())
    st = ParseFlag(f.lut_dtype, f.lut_dtype_name, palettize::ParseLutDType, &o->lut_dtype);
  SetIfGiven(f.nbits, f.nbits_value, &o->nbits);
  SetIfGiven(f.group_size, f.group_size_value, &o->group_size);
  SetIfGiven(f.channel_axis, f.channel_axis_value, &o->channel_axis);
  SetIfGiven(f.cluster_dim, f.cluster_dim_value, &o->cluster_dim);
  SetIfGiven(f.per_channel_scale, f.per_channel_scale_value, &o->enable_per_channel_scale);
  SetIfGiven(f.weight_threshold, f.weight_threshold_value, &o->weight_threshold);
  return st;
}

// compare: the report goes to stdout even when the packages do not match, so that a CI log shows
// every weight; the exit code then says why the step failed (2 mismatch, 4 below --min-snr or
// --min-output-psnr). With --inputs the outputs are compared before anything is printed, so that
// an error there (a bad .npz) is the one line and nothing else.
int RunCompare(const std::string& original, const std::string& compressed, bool as_json,
               const palettize::CompareOutputsOptions& outputs, const double* min_snr,
               const double* min_output_psnr) {
  palettize::CompareReport report;
  palettize::Status st = palettize::Compare(original, compressed, &report);
  if (st.ok() && !outputs.inputs.empty())
    st = palettize::CompareOutputs(original, compressed, outputs, &report);
  if (!st.ok()) return Fail(st);
  st = PrintOut(as_json ? palettize::CompareToJson(report) : palettize::CompareToTable(report));
  if (st.ok()) st = palettize::CheckComparable(report);
  if (!st.ok()) return Fail(st);
  const std::string below = min_snr ? palettize::CheckMinSnr(report, *min_snr) : "";
  const std::string below_outputs =
      min_output_psnr ? palettize::CheckMinOutputPsnr(report, *min_output_psnr) : "";
  if (!below.empty()) Error(below);
  if (!below_outputs.empty()) Error(below_outputs);
  return below.empty() && below_outputs.empty() ? kExitOk : kExitQuality;
}

// compress --output-dir: one ordinary compress per package the inputs name. Failures are listed
// as they happen and again at the end; the exit code is the worst (highest) of theirs.
int RunBatch(palettize::CompressRun run) {
  const bool dry_run = run.options.dry_run;
  int worst = kExitOk;
  run.on_done = [&](const palettize::BatchResult& r, size_t done, size_t total) {
    if (!r.status.ok()) {
      Error(palettize::BatchErrorText(r));
      worst = std::max(worst, ExitCode(r.status));
    } else {
      const std::string plan = "== " + r.item.input + " -> " + r.item.output + "\n" +
                               palettize::CompressPlanText(r.report, !dry_run);
      if (dry_run) {
        std::cout << plan;
      } else {
        Say(spdlog::level::debug, plan);
        Say(spdlog::level::info, palettize::BatchProgressLine(r, done, total));
      }
    }
  };
  palettize::CompressRunReport report;
  palettize::Status st = palettize::RunCompress(run, &report);
  if (!st.ok()) return Fail(st);
  if (dry_run) return worst;
  // A report that cannot be written fails the run, but the packages stay: each is complete.
  if (!report.batch_report.ok()) worst = std::max(worst, Fail(report.batch_report));
  Say(spdlog::level::info, palettize::BatchSummary(report.batch));
  return worst;
}

// compress of one package or checkpoint: a dry run's plan on stdout; else the plan (-v, with each
// weight's seconds) and the summary through the logger. The library writes the output and its report.
int RunOne(const palettize::CompressRun& run) {
  palettize::CompressRunReport report;
  palettize::Status st = palettize::RunCompress(run, &report);
  if (!st.ok()) return Fail(st);
  if (!run.options.shard.empty()) {
    Say(spdlog::level::info,
        "measured slice " + run.options.shard + " of the costs into " + run.options.costs_out);
    return kExitOk;
  }
  const bool checkpoint = report.kind == palettize::CompressRunReport::Kind::kCheckpoint;
  if (run.options.dry_run) {
    std::cout << (checkpoint ? palettize::CheckpointPlanText(report.checkpoint)
                             : palettize::CompressPlanText(report.package));
    return kExitOk;
  }
  Say(spdlog::level::debug, checkpoint ? palettize::CheckpointPlanText(report.checkpoint, true)
                                       : palettize::CompressPlanText(report.package, true));
  Say(spdlog::level::info, checkpoint ? palettize::CheckpointSummary(report.checkpoint)
                                      : palettize::CompressSummary(report.package));
  return kExitOk;
}

// Library messages name options by these flags: "OUT: already exists (use --force to replace it)".
void InstallFlagNames() {
  palettize::OptionNames names;
  names.overwrite = "--force";
  names.min_target = "--minimum-deployment-target";
  names.packed = "--packed";
  names.sensitivity = "--sensitivity";
  names.config = "--config";
  names.output_dir = "--output-dir";
  names.target_bpw = "--target-bpw";
  names.target_size = "--target-size";
  names.min_snr = "--min-snr";
  names.emit_config = "--emit-config";
  names.plot = "--plot";
  names.nbits = "--nbits";
  names.relative_cost = "--cost relative";
  names.tables = "--tables";
  names.calibration = "--calibration";
  names.min_output_psnr = "--min-output-psnr";
  names.shard = "--shard";
  names.costs_out = "--costs-out";
  names.costs = "--costs";
  palettize::SetOptionNames(names);
}

// --per-channel-scale-form's value (CLI11 has checked it is one of the three, in any case).
palettize::PerChannelScaleForm ScaleFormFromName(std::string name) {
  for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (name == "folded") return palettize::PerChannelScaleForm::kFolded;
  if (name == "wrapper") return palettize::PerChannelScaleForm::kWrapper;
  return palettize::PerChannelScaleForm::kAuto;
}

}  // namespace

static int Run(int argc, char** argv) {
  InstallFlagNames();
  CLI::App app{
      "palettize: compress Core ML models (.mlpackage ML Programs) and safetensors checkpoints by "
      "weight palettization."};
  app.require_subcommand(1);
  // One line per usage error, like every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "palettize: " + std::string(e.what()) + " (see --help)\n";
  });
  app.footer(
      "Exit codes: 0 success, 1 usage error (bad flag or option), 2 invalid input (malformed or\n"
      "inconsistent model), 3 I/O failure (missing file, unwritable output), 4 compare: a weight\n"
      "below --min-snr or an output below --min-output-psnr. compress --output-dir exits with the\n"
      "highest code of the models that failed.\n"
      "SIGINT, SIGTERM, SIGHUP: what the run was writing is removed; exit 128 + the signal (130, 143, 129).");

  std::string model;
  bool as_json = false;
  palettize::InspectOptions inspect_options;
  CLI::App* inspect =
      app.add_subcommand("inspect",
                         "List every const weight of a model: dtype, shape, storage, unique values, "
                         "sparsity, consuming ops, and whether it would be palettized.");
  inspect->add_option("MODEL", model, "The .mlpackage to read")->required();
  inspect->add_flag("--json", as_json, "Print JSON (schema in docs/format.md) instead of a table");
  inspect
      ->add_option("--weight-threshold", inspect_options.weight_threshold,
                   "Weights with this many elements or fewer are not palettization candidates "
                   "(coremltools' weight_threshold); every weight is listed either way")
      ->capture_default_str();

  // compress: flags fill the global config (or override the config file's global_config).
  std::string output, config_file, report_file, target, scale_form = "auto";
  bool dry_run = false, force = false, quiet = false, verbose = false;
  ConfigFlags flags;
  CLI::App* compress = app.add_subcommand(
      "compress",
      "Palettize the weights of a model and write a new .mlpackage (and a JSON report); with "
      "--output-dir, of every model in the packages and folders given. A .safetensors INPUT is a "
      "Torch checkpoint: its module weights are palettized into a new .safetensors file.");
  std::vector<std::string> inputs;
  compress
      ->add_option(
          "INPUT", inputs,
          "The .mlpackage or .safetensors checkpoint to compress (never modified); with --output-dir, "
          "any number of packages and folders (searched recursively for *.mlpackage)")
      ->required();
  auto* o_output = compress->add_option(
      "-o,--output", output,
      "The .mlpackage (for a checkpoint: .safetensors) to write (assembled beside, then renamed)");
  std::string output_dir;
  int jobs = 1;
  auto* o_output_dir = compress->add_option(
      "--output-dir", output_dir,
      "Batch: write each input's output to OUT/<its name> (a package found in a folder input: OUT/<its "
      "path in that folder>); a model that fails does not stop the others");
  o_output_dir->excludes(o_output);
  compress
      ->add_option("--jobs", jobs,
                   "Batch: models compressed at a time (default 1); each uses its own --threads workers")
      ->check(CLI::PositiveNumber)
      ->needs(o_output_dir);
  compress->add_option(
      "--config", config_file,
      "YAML config in coremltools' OptimizationConfig schema (see configs/); for a .safetensors "
      "input, in coremltools.optimize.torch's PostTrainingPalettizerConfig schema (global_config, "
      "module_type_configs, module_name_configs, n_bits). Flags below override its global_config");
  bool packed = false;
  compress->add_flag(
      "--packed", packed,
      "Checkpoints: write each palettized tensor X as X.lut, X.indices (packed bits) and scales, "
      "described in __metadata__ (docs/format.md section 9). Default: dense tensors in the input's "
      "dtype, which load into the Torch model unchanged");
  flags.mode = compress
                   ->add_option("--mode", flags.mode_name,
                                "kmeans (default: exact optimal 1-D k-means), uniform, or unique (lossless)")
                   ->check(CLI::IsMember({"kmeans", "uniform", "unique"}, CLI::ignore_case));
  flags.nbits = compress
                    ->add_option("--nbits", flags.nbits_value,
                                 "Bits per index: 1, 2, 3, 4, 6 or 8 (default 6; 3 needs iOS18)")
                    ->check(CLI::IsMember({1, 2, 3, 4, 6, 8}));
  flags.granularity = compress
                          ->add_option("--granularity", flags.granularity_name,
                                       "per_tensor (default: one table per weight) or per_grouped_channel "
                                       "(a table per group of channels: smaller error, iOS18)")
                          ->check(CLI::IsMember({"per_tensor", "per_grouped_channel"}, CLI::ignore_case));
  flags.group_size = compress->add_option("--group-size", flags.group_size_value,
                                          "Channels per table for per_grouped_channel (default 32)");
  flags.channel_axis = compress->add_option(
      "--channel-axis", flags.channel_axis_value,
      "Axis the channel groups run along (default: chosen from the consuming op, as coremltools; "
      "for a checkpoint 0, Torch's output channels)");
  flags.cluster_dim = compress->add_option("--cluster-dim", flags.cluster_dim_value,
                                           "Vector length of table entries (default 1; > 1 needs iOS18)");
  flags.per_channel_scale = compress->add_flag("--per-channel-scale", flags.per_channel_scale_value,
                                               "Normalise by a per-channel scale before clustering (iOS18)");
  compress
      ->add_option("--per-channel-scale-form", scale_form,
                   "How an iOS18 output stores --per-channel-scale: auto (default: the scale folded into "
                   "the tables when exact and at most 1.5x the bytes, else wrapper), folded, or wrapper "
                   "(constexpr_blockwise_shift_scale around the LUT op; rejected by the Neural Engine on "
                   "macOS 26)")
      ->check(CLI::IsMember({"auto", "folded", "wrapper"}, CLI::ignore_case));
  flags.lut_dtype = compress
                        ->add_option("--lut-dtype", flags.lut_dtype_name,
                                     "Store tables as int8 or uint8 with a scale per table (iOS18)")
                        ->check(CLI::IsMember({"int8", "uint8"}, CLI::ignore_case));
  flags.weight_threshold =
      compress->add_option("--weight-threshold", flags.weight_threshold_value,
                           "Palettize only weights with more elements than this (default 2048)");
  CLI::Option* o_target = compress
                              ->add_option("--minimum-deployment-target", target,
                                           "Packages: force the output's target: iOS16, iOS17 or iOS18 "
                                           "(default: the input's, raised as the "
                                           "config needs)")
                              ->check(CLI::IsMember({"iOS16", "iOS17", "iOS18"}, CLI::ignore_case));
  compress->add_option(
      "--report", report_file,
      "Write a JSON report of every weight (docs/format.md section 6); with --output-dir, "
      "one report of every model (section 7); for a checkpoint, of every tensor (section 9)");
  compress->add_flag("--dry-run", dry_run,
                     "Print the plan (each weight's config, or why it is skipped) and write nothing");
  compress->add_flag("--force", force,
                     "Replace OUTPUT (with --output-dir: every output) if it exists and is of its kind: a "
                     "package (a folder holding Manifest.json), for a checkpoint a regular file");
  int threads = 0;
  compress
      ->add_option("--threads", threads,
                   "Worker threads per model (default: one per core; a larger count is capped at the cores "
                   "this process may use); the output is the same for any count")
      ->check(CLI::NonNegativeNumber);
  auto* o_quiet = compress->add_flag("-q,--quiet", quiet, "Print nothing but errors");
  compress
      ->add_flag("-v,--verbose", verbose,
                 "Also print the plan: each weight's config and seconds, or why it is skipped")
      ->excludes(o_quiet);
  std::string sensitivity_file;
  bool sensitivity_normalize = false;
  auto* o_sens = compress->add_option(
      "--sensitivity", sensitivity_file,
      "A .safetensors file of per-element sensitivities (>= 0): k-means tables of the weights it has a "
      "tensor for minimise the sensitivity-weighted error. A tensor applies to the const of its name, or, "
      "named X.sensitivity beside the original weight X, to the const holding X's values (for a checkpoint: "
      "to the tensor X, by name only); other weights get plain k-means (the report says which). Default: "
      "none");
  compress
      ->add_flag(
          "--sensitivity-normalize", sensitivity_normalize,
          "Normalise each sensitivity tensor as coremltools' SKMPalettizer does (divide by its maximum, "
          "zeros raised to its smallest non-zero value, at least 1e-12), so no element is ignored. "
          "Default: off, values used as given")
      ->needs(o_sens);
  std::string tables_file;
  compress->add_option(
      "--tables", tables_file,
      "A --packed .safetensors of trained tables (palettize.torch's save_palettized, or compress --packed): "
      "each const a table names (X, X with '.' -> '_', either + '_to_fp16') becomes LUT ops holding that "
      "table and its indices as they are; they must decode to the const bit for bit (docs/format.md "
      "section 10). No other const is palettized; not with --config or palettizing flags. Default: none");

  // Bit allocation: one objective at most (CLI11 refuses two); the library refuses the rest.
  double target_bpw = 0, target_min_snr = 0;
  std::string target_size, emit_config, plot, cost = "sse";
  auto* o_bpw = compress->add_option(
      "--target-bpw", target_bpw,
      "Bit allocation: give each weight the config palettizes the nbits (1, 2, 4, 6, 8; 3 when the output is "
      "iOS18; or none) that minimise the total error (with --sensitivity, the sensitivity-weighted error) "
      "while the weights average at most this many bits per element, tables and scales included. Solved "
      "exactly; the report's allocation section has every weight's curve. Not with --nbits");
  auto* o_size = compress->add_option("--target-size", target_size,
                                      "Bit allocation as --target-bpw, to a budget in bytes of those weights "
                                      "(K, M, G suffixes, 1024-based: 120M)");
  auto* o_snr = compress->add_option("--min-snr", target_min_snr,
                                     "Bit allocation: each weight the config palettizes takes its smallest "
                                     "candidate whose SNR is at least this many dB (or stays uncompressed)");
  double target_output_psnr = 0;
  std::vector<std::string> calibration;
  auto* o_out_psnr = compress->add_option(
      "--min-output-psnr", target_output_psnr,
      "Bit allocation with --calibration: the smallest allocation (on the Lagrangian path of the measured "
      "costs, by bisection) whose output PSNR on the calibration samples, worst (sample, output) pair, "
      "is at least this many dB");
  o_bpw->excludes(o_size)->excludes(o_snr)->excludes(o_out_psnr);
  o_size->excludes(o_snr)->excludes(o_out_psnr);
  o_snr->excludes(o_out_psnr);
  compress->add_option(
      "--calibration", calibration,
      "Bit allocation by measured output error: .npz files or folders of them, one sample each (as "
      "compare --inputs). Each candidate's cost is the output error of the model with only that weight "
      "at that candidate; the report gives the written model's output PSNR beside the predicted one. "
      "Packages only; not with --sensitivity, --cost relative or --min-snr");
  std::string shard, costs_out;
  std::vector<std::string> costs;
  compress->add_option(
      "--shard", shard,
      "With --calibration: measure only slice K of N (0 <= K < N) of the candidates' output errors, every "
      "N-th (weight, width) pair, and write them to --costs-out instead of a package (no -o). Run the N "
      "slices anywhere (a Slurm array, GNU parallel; README), then merge them with --costs");
  compress->add_option("--costs-out", costs_out,
                       "With --shard: the costs file (JSON, docs/format.md) to write");
  compress->add_option(
      "--costs", costs,
      "The N slices' costs files, merged instead of measuring: the output is byte for byte the --calibration "
      "run's with the same options. Each must be of this model, these options and one set of samples. "
      "--calibration too (the same samples) measures the written model's output PSNR; --min-output-psnr "
      "needs it");
  compress->add_option(
      "--emit-config", emit_config,
      "Bit allocation: write it as a config (coremltools' schema; for a checkpoint, the Torch "
      "schema) that --config reproduces byte for byte");
  compress->add_option(
      "--plot", plot,
      "Bit allocation: write an SVG of the size-quality curve, the uniform widths, the chosen "
      "point and each weight's bits");
  compress
      ->add_option(
          "--cost", cost,
          "Bit allocation: what it minimises, summed over the weights. sse: each weight's squared "
          "error (with --sensitivity, the sensitivity-weighted one); relative: each weight's squared "
          "error over its mean square, so every weight's noise-to-signal counts alike (not with "
          "--sensitivity). On all-MiniLM-L6-v2 (BENCHMARKS.md) relative matched uniform's output "
          "quality where sse was far worse. Default: sse")
      ->check(CLI::IsMember({"sse", "relative"}));

  std::string dec_input, dec_output;
  bool dec_force = false;
  CLI::App* decompress =
      app.add_subcommand("decompress",
                         "Turn every palettized weight (constexpr_lut_to_dense and its shift/scale ops) "
                         "back into a dense const, as coremltools' decompress_weights does.");
  decompress->add_option("INPUT", dec_input, "The .mlpackage to decompress (never modified)")->required();
  decompress->add_option("-o,--output", dec_output, "The .mlpackage to write")->required();
  decompress->add_flag("--force", dec_force,
                       "Replace OUTPUT if it exists and is a package (a folder holding Manifest.json)");

  std::string cmp_original, cmp_compressed;
  bool cmp_json = false;
  double min_snr = 0;
  CLI::App* compare = app.add_subcommand(
      "compare",
      "Per weight SNR and max abs error of COMPRESSED (decompressed as by decompress) against "
      "ORIGINAL, and how each weight is stored, so that CI can gate on quality.");
  compare->add_option("ORIGINAL", cmp_original, "The uncompressed .mlpackage")->required();
  compare->add_option("COMPRESSED", cmp_compressed, "The .mlpackage compressed from it")->required();
  compare->add_flag("--json", cmp_json, "Print JSON (schema in docs/format.md) instead of a table");
  auto* o_min_snr = compare->add_option(
      "--min-snr", min_snr,
      "Exit 4 when a weight's SNR is below this many dB (identical weights have an infinite SNR). A weight "
      "missing from COMPRESSED, or of another dtype or shape, always exits 2");
  palettize::CompareOutputsOptions cmp_outputs;
  double min_output_psnr = 0;
  auto* o_cmp_inputs =
      compare
          ->add_option(
              "--inputs", cmp_outputs.inputs,
              "Run both models on these samples and compare each output (PSNR with peak max |original|, "
              "cosine, max abs error): .npz files as for eval --inputs, or folders of them (their *.npz "
              "in name order)")
          ->expected(1, -1);
  compare->add_option("--function", cmp_outputs.function, "With --inputs: the program's function to run")
      ->capture_default_str()
      ->needs(o_cmp_inputs);
  compare
      ->add_option(
          "--seed", cmp_outputs.seed,
          "With --inputs: seed of the inputs a sample lacks (as eval --seed; the same for both models)")
      ->capture_default_str()
      ->needs(o_cmp_inputs);
  auto* o_min_output_psnr = compare->add_option(
      "--min-output-psnr", min_output_psnr,
      "With --inputs: exit 4 when an output's PSNR on any sample is below this many dB (identical outputs "
      "have an infinite PSNR)");
  o_min_output_psnr->needs(o_cmp_inputs);

  std::string eval_model;
  palettize::EvalOptions eval_options;
  CLI::App* eval = app.add_subcommand(
      "eval",
      "Run a function of an ML Program on CPU and print a summary of each output (name, "
      "dtype, shape, min, max, "
      "mean), or write the outputs to an .npz. Inputs come from --inputs or are generated from the "
      "function's declared inputs, seeded.");
  eval->add_option("MODEL", eval_model, "The .mlpackage to run")->required();
  eval->add_option("--function", eval_options.function, "The program's function to run")
      ->capture_default_str();
  eval->add_option("--inputs", eval_options.inputs_path,
                   "A NumPy .npz of inputs by name (numpy.savez or savez_compressed), each of the dtype and "
                   "shape the function declares; inputs it lacks are generated (--seed)");
  eval->add_option("--outputs", eval_options.outputs_path,
                   "Write every output to this .npz, under its name, instead of printing the summary");
  eval->add_flag("--force", eval_options.overwrite, "Replace an existing --outputs file");
  eval->add_option(
          "--seed", eval_options.seed,
          "Seed of generated inputs: floats (and images) normal(0, 1), integers in [0, 10), bools 0 or 1")
      ->capture_default_str();

  // An unknown word where the command goes is named, rather than CLI11's "A subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    std::string known;
    bool found = false;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
      found = found || sub->get_name() == argv[1];
      known += (known.empty() ? "" : ", ") + sub->get_name();
    }
    if (!found) {
      Error(std::string(argv[1]) + ": unknown command; the commands are " + known + " (see --help)");
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (compare->parsed())
    return RunCompare(cmp_original, cmp_compressed, cmp_json, cmp_outputs,
                      o_min_snr->count() ? &min_snr : nullptr,
                      o_min_output_psnr->count() ? &min_output_psnr : nullptr);

  if (eval->parsed()) {
    palettize::EvalReport report;
    palettize::Status st = palettize::Eval(eval_model, eval_options, &report);
    if (!st.ok()) return Fail(st);
    if (!eval_options.outputs_path.empty()) {
      Say(spdlog::level::info,
          "wrote " + std::to_string(report.outputs.size()) + " outputs to " + eval_options.outputs_path);
      return kExitOk;
    }
    st = PrintOut(palettize::EvalSummaryToText(report));
    return st.ok() ? kExitOk : Fail(st);
  }

  if (decompress->parsed()) {
    palettize::DecompressOptions options;
    options.overwrite = dec_force;
    palettize::DecompressReport report;
    palettize::Status st = palettize::Decompress(dec_input, dec_output, options, &report);
    if (!st.ok()) return Fail(st);
    Say(spdlog::level::info,
        "decompressed " + std::to_string(report.weights) + " weights into " + dec_output);
    return kExitOk;
  }

  if (compress->parsed()) {
    if (quiet) Log().set_level(spdlog::level::err);
    if (verbose) Log().set_level(spdlog::level::debug);
    if (output_dir.empty() && inputs.size() > 1) {
      Error("compress: " + std::to_string(inputs.size()) +
            " inputs need --output-dir OUT (-o names one output)");
      return kExitUsage;
    }
    if (palettize::IsCheckpointPath(inputs[0]) && !output_dir.empty()) {
      Error(inputs[0] +
            ": --output-dir takes .mlpackage packages and folders; compress a checkpoint with -o "
            "OUTPUT.safetensors");
      return kExitUsage;
    }
    if (output.empty() && output_dir.empty() && !dry_run && costs_out.empty() && shard.empty()) {
      Error("compress: -o OUTPUT is required (or use --dry-run)");
      return kExitUsage;
    }
    palettize::CompressRun run;
    run.inputs = inputs;
    run.output = output;
    run.output_dir = output_dir;
    run.packed = packed;
    run.jobs = jobs;
    palettize::CompressOptions& options = run.options;
    palettize::Status st = FlagsToOverrides(flags, &run.overrides);
    if (st.ok() && !target.empty())
      st = ParseFlag(o_target, target, palettize::ParseDeploymentTarget, &options.min_target);
    if (!st.ok()) return Fail(st);
    options.per_channel_scale_form = ScaleFormFromName(scale_form);
    options.overwrite = force;
    options.report_path = report_file;
    options.config_file = config_file;
    options.dry_run = dry_run;
    options.threads = threads;
    options.sensitivity_file = sensitivity_file;
    options.sensitivity_normalize = sensitivity_normalize;
    options.tables_file = tables_file;
    if (o_bpw->count()) {
      options.objective = palettize::AllocationObjective::kTargetBpw;
      options.budget = target_bpw;
    } else if (o_size->count()) {
      options.objective = palettize::AllocationObjective::kTargetSize;
      st = ParseFlag(o_size, target_size, palettize::ParseByteSize, &options.budget);
      if (!st.ok()) return Fail(st);
    } else if (o_snr->count()) {
      options.objective = palettize::AllocationObjective::kMinSnr;
      options.budget = target_min_snr;
    } else if (o_out_psnr->count()) {
      options.objective = palettize::AllocationObjective::kMinOutputPsnr;
      options.budget = target_output_psnr;
    }
    options.calibration = calibration;
    options.shard = shard;
    options.costs_out = costs_out;
    options.costs = costs;
    options.emit_config_path = emit_config;
    options.plot_path = plot;
    options.relative_cost = cost == "relative";
    if (!output_dir.empty()) return RunBatch(std::move(run));
    // A progress bar only for people: on a terminal, never in logs or pipes.
    const bool bar = !quiet && isatty(STDERR_FILENO);
    const auto started = std::chrono::steady_clock::now();
    auto last_draw = started - std::chrono::seconds(1);
    if (bar) {
      options.progress = [&](size_t done, size_t total, uint64_t bytes_done, uint64_t bytes_total) {
        const auto now = std::chrono::steady_clock::now();
        if (done < total && now - last_draw < std::chrono::milliseconds(100)) return;
        last_draw = now;
        const double secs = std::chrono::duration<double>(now - started).count();
        const double mbs = secs > 0 ? double(bytes_done) / secs / 1e6 : 0;
        const double eta = bytes_done > 0 ? secs * double(bytes_total - bytes_done) / double(bytes_done) : 0;
        const int width = 30, filled = total ? int(width * done / total) : width;
        std::fprintf(stderr, "\r[%s%s] %zu/%zu weights  %.0f MB/s  ETA %.0f s   ",
                     std::string(size_t(filled), '#').c_str(),
                     std::string(size_t(width - filled), ' ').c_str(), done, total, mbs, eta);
        if (done == total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
      };
    }
    return RunOne(run);
  }

  if (inspect->parsed()) {
    palettize::ModelInfo info;
    palettize::Status st = palettize::Inspect(model, inspect_options, &info);
    if (!st.ok()) return Fail(st);
    st = PrintOut(as_json ? palettize::InspectToJson(info) : palettize::InspectToTable(info));
    if (!st.ok()) return Fail(st);
  }
  return kExitOk;
}

// The library turns what it throws into a Status (lib/util/guard.h); this catches what escapes
// main's own code (a report string too large for memory, the standard streams), so that a run
// ends with one line and exit 2, never in std::terminate.
int main(int argc, char** argv) {
  // Before any thread exists: an interrupted run removes what it staged and exits 128 + signal.
  if (palettize::Status st = palettize::RemoveStagedOutputsOnSignals(); !st.ok()) return Fail(st);
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    Error(std::string("unexpected error: ") + e.what());
  } catch (...) {
    Error("unexpected error of unknown kind");
  }
  return kExitInvalidInput;
}
