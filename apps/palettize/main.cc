// palettize: library plus main(). Parses flags into the library's option structs, calls it, and
// maps the returned Status to an exit code. Only this file decides exit codes and prints errors.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "palettize/compress.h"
#include "palettize/config.h"
#include "palettize/decompress.h"
#include "palettize/inspect.h"
#include "palettize/status.h"

namespace {

// Exit codes, documented in --help and README.md.
constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitInvalidInput = 2;
constexpr int kExitIO = 3;

int Fail(const palettize::Status& st) {
  std::fprintf(stderr, "palettize: %s\n", st.message().c_str());
  switch (st.code()) {
    case palettize::Status::Code::kOk: return kExitOk;
    case palettize::Status::Code::kInvalidArgument: return kExitUsage;
    case palettize::Status::Code::kInvalidInput: return kExitInvalidInput;
    case palettize::Status::Code::kIOError: return kExitIO;
  }
  return kExitInvalidInput;
}

// Reads a whole file for the config parser. Errors name the file.
palettize::Status ReadConfigFile(const std::string& path, std::string* text) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return palettize::Status::IOError(path + ": cannot open config file");
  text->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return palettize::Status::OK();
}

// Writes `text` to `path` beside-then-rename, so a reader never sees half a report.
palettize::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".partial-" + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      return palettize::Status::IOError(path + ": cannot write report");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return palettize::Status::IOError(path + ": cannot write report: " + ec.message());
  }
  return palettize::Status::OK();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"palettize: compress Core ML models (.mlpackage ML Programs) by weight palettization."};
  app.require_subcommand(1);
  // One line per usage error, like every other error.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "palettize: " + std::string(e.what()) + " (see --help)\n";
  });
  app.footer(
      "Exit codes: 0 success, 1 usage error (bad flag or option), 2 invalid input (malformed or\n"
      "inconsistent model), 3 I/O failure (missing file, unwritable output).");

  std::string model;
  bool as_json = false;
  palettize::InspectOptions inspect_options;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "List every const weight of a model: dtype, shape, storage, unique values, "
                 "sparsity, consuming ops, and whether it would be palettized.");
  inspect->add_option("MODEL", model, "The .mlpackage to read")->required();
  inspect->add_flag("--json", as_json, "Print JSON (schema in docs/format.md) instead of a table");
  inspect
      ->add_option("--weight-threshold", inspect_options.weight_threshold,
                   "Weights with this many elements or fewer are not palettization candidates "
                   "(coremltools' weight_threshold); every weight is listed either way")
      ->capture_default_str();

  // compress: flags fill the global config (or override the config file's global_config).
  std::string input, output, config_file, report_file, mode, granularity, lut_dtype, target;
  int nbits = 6;
  int64_t group_size = 32, channel_axis = 0, cluster_dim = 1, threshold = 2048;
  bool per_channel_scale = false, dry_run = false, force = false, quiet = false, verbose = false;
  CLI::App* compress = app.add_subcommand(
      "compress", "Palettize the weights of a model and write a new .mlpackage (and a JSON report).");
  compress->add_option("INPUT", input, "The .mlpackage to compress (never modified)")->required();
  compress->add_option("-o,--output", output, "The .mlpackage to write (assembled beside, then renamed)");
  compress->add_option("--config", config_file,
                       "YAML config in coremltools' OptimizationConfig schema (see configs/); "
                       "flags below override its global_config");
  auto* o_mode = compress->add_option("--mode", mode, "kmeans (default: exact optimal 1-D k-means), uniform, or unique (lossless)")
      ->check(CLI::IsMember({"kmeans", "uniform", "unique"}, CLI::ignore_case));
  auto* o_nbits = compress->add_option("--nbits", nbits, "Bits per index: 1, 2, 3, 4, 6 or 8 (default 6; 3 needs iOS18)")
      ->check(CLI::IsMember({1, 2, 3, 4, 6, 8}));
  auto* o_gran = compress->add_option("--granularity", granularity,
                                      "per_tensor (default: one table per weight) or per_grouped_channel "
                                      "(a table per group of channels: smaller error, iOS18)")
      ->check(CLI::IsMember({"per_tensor", "per_grouped_channel"}, CLI::ignore_case));
  auto* o_group = compress->add_option("--group-size", group_size, "Channels per table for per_grouped_channel (default 32)");
  auto* o_axis = compress->add_option("--channel-axis", channel_axis,
                                      "Axis the channel groups run along (default: chosen from the consuming op, as coremltools)");
  auto* o_cdim = compress->add_option("--cluster-dim", cluster_dim, "Vector length of table entries (default 1; > 1 needs iOS18)");
  auto* o_pcs = compress->add_flag("--per-channel-scale", per_channel_scale,
                                   "Normalise by a per-channel scale before clustering (iOS18)");
  auto* o_lut = compress->add_option("--lut-dtype", lut_dtype, "Store tables as int8 or uint8 with a scale per table (iOS18)")
      ->check(CLI::IsMember({"int8", "uint8"}, CLI::ignore_case));
  auto* o_thr = compress->add_option("--weight-threshold", threshold,
                                     "Palettize only weights with more elements than this (default 2048)");
  compress->add_option("--minimum-deployment-target", target,
                       "Force the output's target: iOS16, iOS17 or iOS18 (default: the input's, raised as the config needs)")
      ->check(CLI::IsMember({"iOS16", "iOS17", "iOS18"}, CLI::ignore_case));
  compress->add_option("--report", report_file, "Write a JSON report of every weight (docs/format.md section 6)");
  compress->add_flag("--dry-run", dry_run, "Print the plan (each weight's config, or why it is skipped) and write nothing");
  compress->add_flag("--force", force, "Replace OUTPUT if it exists");
  int threads = 0;
  compress->add_option("--threads", threads, "Worker threads (default: one per core); the output is the same for any count")
      ->check(CLI::NonNegativeNumber);
  compress->add_flag("-q,--quiet", quiet, "Print nothing but errors");
  compress->add_flag("-v,--verbose", verbose, "Also print the plan and every skipped weight");

  std::string dec_input, dec_output;
  bool dec_force = false;
  CLI::App* decompress = app.add_subcommand(
      "decompress", "Turn every palettized weight (constexpr_lut_to_dense and its shift/scale ops) "
                    "back into a dense const, as coremltools' decompress_weights does.");
  decompress->add_option("INPUT", dec_input, "The .mlpackage to decompress (never modified)")->required();
  decompress->add_option("-o,--output", dec_output, "The .mlpackage to write")->required();
  decompress->add_flag("--force", dec_force, "Replace OUTPUT if it exists");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (decompress->parsed()) {
    palettize::DecompressOptions options;
    options.overwrite = dec_force;
    palettize::DecompressReport report;
    palettize::Status st = palettize::Decompress(dec_input, dec_output, options, &report);
    if (!st.ok()) return Fail(st);
    std::fprintf(stderr, "decompressed %zu weights into %s\n", report.weights, dec_output.c_str());
    return kExitOk;
  }

  if (compress->parsed()) {
    if (output.empty() && !dry_run) {
      std::fprintf(stderr, "palettize: compress: -o OUTPUT is required (or use --dry-run)\n");
      return kExitUsage;
    }
    palettize::CompressOptions options;
    palettize::OptimizationConfig& cfg = options.config;
    if (!config_file.empty()) {
      std::string text;
      palettize::Status st = ReadConfigFile(config_file, &text);
      if (st.ok()) st = palettize::ParseOptimizationConfig(text, config_file, &cfg);
      if (!st.ok()) return Fail(st);
    } else {
      cfg.global_config = palettize::PalettizeConfig();
      cfg.global_config->nbits = 6;
    }
    const bool any_flag = o_mode->count() || o_nbits->count() || o_gran->count() || o_group->count() ||
                          o_axis->count() || o_cdim->count() || o_pcs->count() || o_lut->count() || o_thr->count();
    if (any_flag) {
      if (!cfg.global_config) {
        cfg.global_config = palettize::PalettizeConfig();
        cfg.global_config->nbits = 6;
      }
      palettize::PalettizeConfig& g = *cfg.global_config;
      std::string lower;
      for (char ch : mode) lower += char(std::tolower(static_cast<unsigned char>(ch)));
      if (o_mode->count()) {
        g.mode = lower == "uniform" ? palettize::PalettizeMode::kUniform
                 : lower == "unique" ? palettize::PalettizeMode::kUnique : palettize::PalettizeMode::kKMeans;
        if (g.mode == palettize::PalettizeMode::kUnique && !o_nbits->count()) g.nbits = 0;
        if (g.mode != palettize::PalettizeMode::kUnique && g.nbits == 0) g.nbits = 6;
      }
      if (o_nbits->count()) g.nbits = nbits;
      if (o_gran->count())
        g.granularity = (granularity[4] == 'g' || granularity[4] == 'G') ? palettize::Granularity::kPerGroupedChannel
                                                                         : palettize::Granularity::kPerTensor;
      if (o_group->count()) g.group_size = group_size;
      if (o_axis->count()) g.channel_axis = channel_axis;
      if (o_cdim->count()) g.cluster_dim = cluster_dim;
      if (o_pcs->count()) g.enable_per_channel_scale = per_channel_scale;
      if (o_lut->count())
        g.lut_dtype = (lut_dtype[0] == 'u' || lut_dtype[0] == 'U') ? palettize::LutDType::kUInt8 : palettize::LutDType::kInt8;
      if (o_thr->count()) g.weight_threshold = threshold;
      palettize::Status st = palettize::ValidatePalettizeConfig(g, "options");
      if (!st.ok()) return Fail(st);
    }
    // Refuse a report that cannot be written before any work, not after the package is.
    if (!report_file.empty()) {
      const std::filesystem::path folder = std::filesystem::path(report_file).parent_path();
      if (!folder.empty() && !std::filesystem::is_directory(folder))
        return Fail(palettize::Status::IOError(report_file + ": cannot write report: no folder " + folder.string()));
    }
    if (!target.empty()) options.min_target = palettize::DeploymentTarget(std::stoi(target.substr(3)));
    options.overwrite = force;
    options.dry_run = dry_run;
    options.threads = threads;
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
        std::fprintf(stderr, "\r[%s%s] %zu/%zu weights  %.0f MB/s  ETA %.0f s   ", std::string(size_t(filled), '#').c_str(),
                     std::string(size_t(width - filled), ' ').c_str(), done, total, mbs, eta);
        if (done == total) std::fprintf(stderr, "\n");
        std::fflush(stderr);
      };
    }
    palettize::CompressReport report;
    palettize::Status st = palettize::Compress(input, output, options, &report);
    if (!st.ok()) return Fail(st);
    if (dry_run) {
      std::cout << palettize::CompressPlanText(report);
      return kExitOk;
    }
    if (!report_file.empty()) {
      st = WriteFileAtomically(report_file, palettize::CompressReportToJson(report));
      if (!st.ok()) return Fail(st);
    }
    if (verbose) std::cerr << palettize::CompressPlanText(report);
    if (!quiet) std::cerr << palettize::CompressSummary(report);
    return kExitOk;
  }

  if (inspect->parsed()) {
    palettize::ModelInfo info;
    palettize::Status st = palettize::Inspect(model, inspect_options, &info);
    if (!st.ok()) return Fail(st);
    std::cout << (as_json ? palettize::InspectToJson(info) : palettize::InspectToTable(info));
    std::cout.flush();
    if (!std::cout) return Fail(palettize::Status::IOError("standard output: write failed"));
  }
  return kExitOk;
}
