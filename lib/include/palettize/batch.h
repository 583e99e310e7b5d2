// Batch: compress a model zoo in one run (`palettize compress A.mlpackage DIR ... --output-dir
// OUT`). Each model is an ordinary Compress call with the same options; a failure on one does
// not stop the others.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "palettize/compress.h"
#include "palettize/status.h"

namespace palettize {

struct BatchItem {
  std::string input;   // a package
  std::string output;  // where its compressed copy goes
};

// Expands `inputs` into packages and their outputs under `out_dir`:
//   - an argument that is a package (its name ends in .mlpackage, or it holds a Manifest.json)
//     goes to OUT/<its name>;
//   - any other folder is searched recursively for folders named *.mlpackage (never inside a
//     package, nor inside OUT), each going to OUT/<its path relative to that folder>, so a zoo's
//     sub-folders are mirrored and models of the same name in different sub-folders do not clash.
// Order: arguments as given, the packages found in one folder sorted by path; a package reached
// twice (the same folder on disk) is listed once. Nothing is written. Errors, so that nothing is
// started: a missing argument (IOError), a folder holding no package, two inputs with the same
// output (InvalidArgument, naming the paths), or a path rule broken by OUT, any output or
// options.report_path against every input, options.sensitivity_file and options.config_file
// (README "Path rules": lib/util/path_rules.h; options.overwrite and options.dry_run apply).
Status PlanBatch(const std::vector<std::string>& inputs, const std::string& out_dir,
                 const CompressOptions& options, std::vector<BatchItem>* items);

struct BatchResult {
  BatchItem item;
  Status status;
  CompressReport report;  // meaningful when status.ok()
};

struct BatchReport {
  std::vector<BatchResult> models;  // in the order of the items
  size_t ok = 0, failed = 0;
  uint64_t bytes_before = 0, bytes_after = 0;  // over the models that succeeded
  double wall_seconds = 0;
};

struct BatchOptions {
  CompressOptions compress;  // for every model (its progress callback is not used)
  // Models compressed at a time (>= 1). Each runs its own pool of compress.threads workers
  // (0: one per core); the pools share the cores, so more jobs help when models are small (many
  // cheap steps that do not fill the cores), at the cost of holding more models in memory.
  int jobs = 1;
  // Called as each model finishes, from one thread at a time, in the order they finish.
  std::function<void(const BatchResult& result, size_t done, size_t total)> on_done;
};

// Compresses every item; results are in the order of `items`. Creates OUT and the folders outputs
// need; a model that fails leaves nothing at its output, and folders this run created that end up
// empty are removed.
void CompressBatch(const std::vector<BatchItem>& items, const BatchOptions& options, BatchReport* report);

// The error of a failed model on one line, starting with its input's path.
std::string BatchErrorText(const BatchResult& result);

// The summary report (docs/format.md section 7): one entry per model with its
// full compress report. Timings are left out when !with_timings.
std::string BatchReportToJson(const BatchReport& report, bool with_timings = true);

// Writes BatchReportToJson(report) to `path` beside, then renamed into place (in place for a
// special file: /dev/stdout, a FIFO). The packages are committed already: a failure here leaves
// them. Errors: "REPORT: cannot write report: <reason>".
Status WriteBatchReport(const std::string& path, const BatchReport& report);

// For people: a line for a model that succeeded ("[3/10] IN -> OUT: palettized ..."), and the
// totals with every failure listed.
std::string BatchProgressLine(const BatchResult& result, size_t done, size_t total);
std::string BatchSummary(const BatchReport& report);

}  // namespace palettize
