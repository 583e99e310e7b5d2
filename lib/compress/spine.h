// The compress spine, shared by packages (compress.cc) and checkpoints (checkpoint/): config
// checks, then for the weights a plan selected: largest first, read, match sensitivities,
// palettize in parallel, write in that fixed order, fill the report, totals, stage the report and
// commit it with the output. What is specific to an input kind (MIL rewriting and targets; dense or
// packed safetensors) lies behind SpineIO.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "alloc/candidates.h"
#include "compress/output_meter.h"
#include "config/config_writer.h"
#include "mil/weights.h"
#include "palettize/compress.h"
#include "palettize/config.h"
#include "palettize/status.h"
#include "palettizer/weight_palettizer.h"
#include "plan/plan.h"
#include "sensitivity/sensitivity.h"
#include "util/staging.h"

namespace palettize {

// Validates every non-null config of `c`; errors name it as "global_config",
// "<type_key>.<key>" or "<name_key>.<key>" (the schema's own section names).
Status ValidateConfigs(const OptimizationConfig& c, const std::string& type_key, const std::string& name_key);

// A weight's planned entry: palettized (as planned), reason, config, and its size before (and
// after, until it is palettized).
void ReportPlan(const WeightPlan& plan, uint64_t bytes, WeightReport* r);

// A palettized weight's results: nbits, tables, errors.
void ReportResult(const PalettizedWeight& p, WeightReport* r);

// One weight to palettize.
struct SpineJob {
  size_t index = 0;  // its entry in CompressReport::weights
  const TensorShape* shape = nullptr;
  const WeightPlan* plan = nullptr;
  const std::vector<int>* allowed_nbits = nullptr;  // the widths its output form can hold
  // Its raw little-endian elements, set by SpineIO::Read and valid until the run ends. `mapped`:
  // they lie in a file mapping, whose pages are let go once the weight is palettized.
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
  bool mapped = false;
  SensitivityMatch sensitivity;  // set by the spine
  // Set by a bit allocation (spine_alloc.h): the nbits chosen (0: kept uncompressed, for
  // `allocation_note`), and that width's sweep result, whose indices FillIndices completes.
  // -1: no allocation, the plan's nbits.
  int allocated_nbits = -1;
  PalettizedWeight allocated;
  std::string allocation_note;
  // Set (compress --tables): the weight's palettized form, taken as it is instead of computed.
  const PalettizedWeight* preset = nullptr;
};

// job's elements, or a copy of them aligned to their element size (the fast paths read them in
// place as uint16_t or float) in `copy`.
const uint8_t* AlignedElements(const SpineJob& job, std::vector<uint8_t>* copy);

// What an input kind does at each step of RunSpine. Calls come from one thread at a time.
class SpineIO {
 public:
  virtual ~SpineIO() = default;
  // Sets job->data, bytes and mapped; jobs are read one at a time, largest first, before any
  // sensitivity is matched.
  virtual Status Read(SpineJob* job) = 0;
  // After the sensitivities are matched, before a dry run stops.
  virtual void Matched(CompressReport* /*report*/) {}
  // Bit allocation: how job's weight would be stored at each width it can take (sets widths, form
  // and packed_dtype of `sweep`), and the config key that selects it alone (WeightAllocation).
  virtual void AllocationFacts(const SpineJob& job, SweepOptions* sweep, std::string* config_key) = 0;
  // Bit allocation by measured output error: the name job's const binds in the program, which
  // the evaluator substitutes (nullptr: the input kind cannot be measured).
  virtual const std::string* ConstOutputName(const SpineJob& /*job*/) { return nullptr; }
  // After Finish: where the output lies, complete but not yet committed ("" when not a package).
  virtual std::string WrittenPath() const { return ""; }
  // Bit allocation, once solved (before Begin, and in a dry run): `palettized` per report weight.
  virtual void Allocated(const std::vector<bool>& /*palettized*/) {}
  // Opens the output (not in a dry run).
  virtual Status Begin() = 0;
  // The bytes `p` takes as the output stores it; the weight is kept as it is unless fewer than
  // before.
  virtual uint64_t EncodedBytes(const SpineJob& job, const PalettizedWeight& p) = 0;
  // Stores job's weight palettized as `p` (`encoded` bytes); sets r->bytes_after. Jobs come in
  // RunSpine's fixed order, whatever the thread count.
  virtual Status Write(const SpineJob& job, PalettizedWeight&& p, uint64_t encoded, WeightReport* r) = 0;
  // After every job: the rest of the output. Nothing is visible at the output path yet.
  virtual Status Finish(CompressReport* report) = 0;
  // Commits the output and `staged` (the report, the emitted config, the plot) together.
  virtual Status Commit(const std::vector<StagedOutput*>& staged) = 0;
};

struct SpineSettings {
  std::chrono::steady_clock::time_point start;  // for wall_seconds
  int threads = 0;
  decltype(CompressOptions::progress) progress;
  bool keep_decoded = false;  // PalettizedWeight::decoded is filled (a dense output writes it)
  bool dry_run = false;
  bool dry_run_bytes = false;  // a dry run's totals include the bytes (checkpoints' do)
  // With a sensitivity file: matched by name, and by value when `match_by_value` (a package's
  // consts are named by the converter; a checkpoint's tensors by the training code, like the
  // file's).
  SensitivitySet* sensitivities = nullptr;
  bool match_by_value = false;
  std::string report_path;                   // "" = none
  std::function<std::string()> report_json;  // the report as --report writes it
  // Bit allocation (CompressOptions::objective, budget, emit_config_path, plot_path): every job
  // swept, the allocation solved, each job written at its chosen width (spine_alloc.h). `config`
  // is the run's config, which the emitted one (in `schema`) extends.
  std::optional<AllocationObjective> objective;
  double budget = 0;
  std::string emit_config_path, plot_path;  // "" = none
  bool relative_cost = false;               // CompressOptions::relative_cost
  // CompressOptions::calibration: each candidate's cost measured on the model's outputs
  // (spine_measured.h), and the written output measured before it is committed.
  OutputMeter* meter = nullptr;
  // CompressOptions::shard, costs_out, costs (spine_costs.h): measure one slice and write its costs
  // instead of solving, or merge the slices instead of measuring. `model_digest`: the input's
  // identity the costs files carry (package/package_digest.h).
  std::string shard, costs_out;
  std::vector<std::string> costs;
  std::string model_digest;
  const OptimizationConfig* config = nullptr;
  ConfigSchema schema = ConfigSchema::kCoreml;
};

// The settings a run's options give (threads, progress, dry run, report path, the allocation's
// objective, budget and paths); the caller sets the rest, which depend on the input kind.
SpineSettings SpineSettingsFrom(const CompressOptions& options, std::chrono::steady_clock::time_point start);

// Runs `jobs` (any order; the spine sorts them largest first, ties in the order given) through
// `io`, filling `report`, whose weights hold every weight already planned (ReportPlan).
Status RunSpine(std::vector<SpineJob> jobs, const SpineSettings& settings, SpineIO& io,
                CompressReport* report);

// Counts palettized and skipped weights, and with `bytes` sums bytes before and after.
void Totals(CompressReport* report, bool bytes);

}  // namespace palettize
