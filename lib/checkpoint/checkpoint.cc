// compress for safetensors checkpoints: read (mapped) -> plan (checkpoint_plan.h) -> palettize in
// parallel (palettizer/weight_palettizer.h) -> write, dense in place of each tensor or packed
// (encode/packed_tensor.h) -> report.
#include "palettize/checkpoint.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>

#include "checkpoint/checkpoint_plan.h"
#include "encode/packed_tensor.h"
#include "palettize/option_names.h"
#include "palettizer/weight_palettizer.h"
#include "safetensors/safetensors.h"
#include "safetensors/safetensors_writer.h"
#include "sensitivity/sensitivity.h"
#include "util/guard.h"
#include "util/ordered_pipeline.h"
#include "util/path_rules.h"
#include "util/staging.h"

namespace palettize {

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

const std::vector<int> kAllNbits = {1, 2, 3, 4, 6, 8};  // a checkpoint has no target to restrict them
constexpr const char* kMetadataPrefix = "palettize.";
constexpr const char* kVersionKey = "palettize.version";

bool EndsWithNoCase(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) return false;
  return true;
}

// The sensitivity of tensor `t` (to be palettized), noted in its report; non-k-means tables do
// not use one.
Status FindSensitivity(SensitivitySet& set, const TensorPlan& t, SensitivityMatch* match, WeightReport* r) {
  ConstWeight w;
  w.name = t.tensor->name;
  w.shape = t.shape;
  PALETTIZE_RETURN_IF_ERROR(set.Match(w, nullptr, match));  // by name only: the file holds the weights
  r->sensitivity_checked = true;
  if (match->key.empty()) {
    r->sensitivity_note =
        "no sensitivity tensor named '" + w.name + "' or '" + w.name + ".sensitivity': plain k-means";
    return Status::OK();
  }
  r->sensitivity = match->tensor;
  r->sensitivity_match = match->match;
  if (t.plan.config.mode != PalettizeMode::kKMeans) {
    r->sensitivity_note =
        std::string("not used: ") + ModeName(t.plan.config.mode) + " tables do not depend on it";
    *match = SensitivityMatch();
  }
  return Status::OK();
}

// The names and metadata keys --packed adds must not be in the file already.
Status CheckPackedNames(const SafeTensorsFile& file, const std::vector<TensorPlan>& plans) {
  for (const auto& [key, value] : file.metadata())
    if (key.rfind(kMetadataPrefix, 0) == 0)
      return Status::InvalidArgument(file.path() + ": __metadata__ already holds '" + key + "' (a " +
                                     GetOptionNames().packed + " output?); " + GetOptionNames().packed +
                                     " needs a dense checkpoint");
  for (const TensorPlan& p : plans) {
    if (!p.plan.palettize) continue;
    for (const char* suffix : {".lut", ".lut_scale", ".lut_offset", ".indices", ".scale"})
      if (file.Find(p.tensor->name + suffix))
        return Status::InvalidArgument(file.path() + ": tensor '" + p.tensor->name + suffix +
                                       "' exists, and " + GetOptionNames().packed +
                                       " would write a tensor of that name for '" + p.tensor->name + "'");
  }
  return Status::OK();
}

void FillReport(const SafeTensorsFile& file, const std::vector<TensorPlan>& plans, CheckpointReport* rep) {
  for (const TensorPlan& p : plans) {
    WeightReport r;
    r.name = p.tensor->name;
    r.dtype = SafeDTypeName(p.tensor->dtype);
    r.shape = p.tensor->shape;
    r.palettized = p.plan.palettize;
    r.reason = p.plan.reason;
    r.has_config = p.plan.has_config;
    r.config = p.plan.config;
    r.config_source = p.plan.config_source;
    r.bytes_before = r.bytes_after = p.tensor->bytes;
    rep->report.weights.push_back(std::move(r));
    rep->modules.push_back({p.module, p.module_type});
  }
  rep->report.input = file.path();
}

}  // namespace

bool IsCheckpointPath(const std::string& path) { return EndsWithNoCase(path, ".safetensors"); }

static Status CompressCheckpointUnguarded(const std::string& input, const std::string& output,
                                          const CheckpointOptions& options, CheckpointReport* report) {
  const auto start = Clock::now();
  const CompressOptions& o = options.compress;
  PALETTIZE_RETURN_IF_ERROR(CheckRunPaths(CompressRunPaths(input, {output, OutputKind::kFile}, o)));
  const OptimizationConfig& cfg = o.config;
  if (o.min_target != DeploymentTarget::kAuto)
    return Status::InvalidArgument(GetOptionNames().min_target + ": a checkpoint has no deployment target");
  if (cfg.global_config)
    PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*cfg.global_config, "global_config"));
  for (const auto& [k, v] : cfg.op_type_configs)
    if (v) PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*v, "module_type_configs." + k));
  for (const auto& [k, v] : cfg.op_name_configs)
    if (v) PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*v, "module_name_configs." + k));
  if (!o.dry_run && !IsCheckpointPath(output))
    return Status::InvalidArgument(output + ": a checkpoint's output must be a .safetensors file");

  SafeTensorsFile file;
  PALETTIZE_RETURN_IF_ERROR(file.Open(input));
  std::vector<TensorPlan> plans;
  PALETTIZE_RETURN_IF_ERROR(PlanCheckpoint(file.tensors(), cfg, input, &plans));
  if (options.packed) PALETTIZE_RETURN_IF_ERROR(CheckPackedNames(file, plans));
  CheckpointReport rep;
  rep.packed = options.packed;
  FillReport(file, plans, &rep);
  rep.report.output = output;

  std::vector<size_t> jobs;
  for (size_t i = 0; i < plans.size(); ++i)
    if (plans[i].plan.palettize) jobs.push_back(i);
  // Largest first (ties in file order), as compress does: a fixed order, whatever the threads.
  std::stable_sort(jobs.begin(), jobs.end(),
                   [&](size_t a, size_t b) { return plans[a].tensor->bytes > plans[b].tensor->bytes; });
  std::unique_ptr<SensitivitySet> sensitivities;
  std::vector<SensitivityMatch> matches(plans.size());
  if (!o.sensitivity_file.empty()) {
    sensitivities = std::make_unique<SensitivitySet>();
    PALETTIZE_RETURN_IF_ERROR(sensitivities->Open(o.sensitivity_file, o.sensitivity_normalize));
    rep.report.sensitivity_file = o.sensitivity_file;
    rep.report.sensitivity_normalize = o.sensitivity_normalize;
    for (size_t i : jobs)
      PALETTIZE_RETURN_IF_ERROR(
          FindSensitivity(*sensitivities, plans[i], &matches[i], &rep.report.weights[i]));
    rep.report.unused_sensitivities = sensitivities->Unused();
  }
  auto finish = [&] {
    CompressReport& r = rep.report;
    for (const WeightReport& w : r.weights) {
      (w.palettized ? r.palettized : r.skipped)++;
      r.bytes_before += w.bytes_before;
      r.bytes_after += w.bytes_after;
    }
    r.wall_seconds = Seconds(start);
  };
  if (o.dry_run) {
    finish();
    *report = std::move(rep);
    return Status::OK();
  }

  SafeTensorsWriter writer;
  PALETTIZE_RETURN_IF_ERROR(writer.Begin(output, o.overwrite));
  const MappedFile& map = file.mapped();
  // Dense: the input's header (metadata and offsets) is kept byte for byte, and each palettized
  // tensor's new bytes go where its old ones were; `written` records those ranges.
  const uint64_t header_end = file.header_end();
  if (!options.packed) PALETTIZE_RETURN_IF_ERROR(writer.Append(map.data(), header_end));
  std::vector<std::pair<uint64_t, uint64_t>> written;
  std::vector<std::vector<StoredTensor>> packed(plans.size());
  std::map<std::string, std::string> metadata = file.metadata();

  struct Work {
    size_t index = 0;
    PalettizedWeight result;
    bool ok = false;
    std::string failure;
  };
  Status status;
  size_t done = 0;
  uint64_t bytes_total = 0, bytes_done = 0;
  for (size_t i : jobs) bytes_total += plans[i].tensor->bytes;
  auto palettize = [&](size_t i) {
    auto work = std::make_shared<Work>();
    work->index = i;
    if (!status.ok()) return work;
    const auto t0 = Clock::now();
    const SafeTensor& t = *plans[i].tensor;
    // The fast paths read elements in place as uint16_t or float: a tensor the file does not
    // align to its element size is read from an aligned copy.
    std::vector<uint8_t> aligned;
    const uint8_t* data = t.data;
    if (reinterpret_cast<uintptr_t>(data) % SafeDTypeSize(t.dtype) != 0) {
      aligned.assign(t.data, t.data + t.bytes);
      data = aligned.data();
    }
    const ElementWeights* sens = matches[i].key.empty() ? nullptr : &matches[i].weights;
    work->ok = PalettizeWeightRaw(data, plans[i].shape, plans[i].plan, kAllNbits, !options.packed,
                                  &work->result, &work->failure, sens);
    if (sens) sens->Release(0, sens->tensor->elements);
    ReleaseMappedPages(t.data, t.bytes);
    rep.report.weights[i].seconds = Seconds(t0);
    return work;
  };
  auto store = [&](const std::shared_ptr<Work>& work) {
    const size_t i = work->index;
    const TensorPlan& plan = plans[i];
    WeightReport& r = rep.report.weights[i];
    ++done;
    bytes_done += r.bytes_before;
    if (o.progress) o.progress(done, jobs.size(), bytes_done, bytes_total);
    if (!status.ok()) return;
    if (!work->ok) {
      r.palettized = false;
      r.reason = work->failure;
      return;
    }
    const PalettizedWeight& p = work->result;
    const uint64_t packed_bytes = PackedTensorBytes(plan.tensor->dtype, plan.shape, plan.plan, p);
    if (packed_bytes >= r.bytes_before) {
      r.palettized = false;
      r.reason = "palettized it would take " + std::to_string(packed_bytes) + " bytes, not less than its " +
                 std::to_string(r.bytes_before);
      return;
    }
    r.bytes_after = packed_bytes;
    r.nbits = p.nbits;
    r.luts = p.tables;
    r.sse = p.sse;
    r.max_abs_error = p.max_abs_error;
    r.snr_db = p.snr_db;
    r.weighted_sse = p.weighted_sse;
    if (options.packed) {
      PackTensor(plan.tensor->name, plan.tensor->dtype, plan.shape, plan.plan, p, &packed[i],
                 &metadata[kMetadataPrefix + plan.tensor->name]);
      return;
    }
    std::string bytes;
    EncodeFloats(plan.tensor->dtype, p.decoded.data(), p.decoded.size(), &bytes);
    const uint64_t offset = uint64_t(plan.tensor->data - map.data());
    status = writer.WriteAt(offset, bytes.data(), bytes.size());
    written.emplace_back(offset, bytes.size());
  };
  RunOrdered(jobs, o.threads, palettize, store);
  PALETTIZE_RETURN_IF_ERROR(status);

  if (options.packed) {
    // Every tensor in the file's order; a palettized one is replaced by its packed tensors.
    std::vector<SafeTensorSpec> specs;
    std::vector<std::pair<const void*, uint64_t>> parts;
    for (size_t i = 0; i < plans.size(); ++i) {
      const SafeTensor& t = *plans[i].tensor;
      if (!rep.report.weights[i].palettized) {
        specs.push_back({t.name, t.dtype, t.shape});
        parts.emplace_back(t.data, t.bytes);
        continue;
      }
      for (const StoredTensor& s : packed[i]) {
        specs.push_back(s.spec);
        parts.emplace_back(s.data.data(), s.data.size());
      }
    }
    metadata[kVersionKey] = "1";
    std::vector<uint64_t> offsets;
    const std::string header = SafeTensorsHeader(specs, metadata, &offsets);
    PALETTIZE_RETURN_IF_ERROR(writer.Append(header.data(), header.size()));
    for (const auto& [data, n] : parts) PALETTIZE_RETURN_IF_ERROR(writer.Append(data, n));
  } else {
    // Everything not rewritten is copied from the input, in chunks whose pages are then released.
    std::sort(written.begin(), written.end());
    written.emplace_back(map.size(), 0);
    uint64_t pos = header_end;
    for (const auto& [begin, n] : written) {
      for (uint64_t b = pos; b < begin;) {
        const uint64_t chunk = std::min<uint64_t>(begin - b, 64 << 20);
        PALETTIZE_RETURN_IF_ERROR(writer.WriteAt(b, map.data() + b, chunk));
        ReleaseMappedPages(map.data() + b, chunk);
        b += chunk;
      }
      pos = std::max(pos, begin + n);
    }
  }
  // The report is staged before the output is committed, and both are committed together.
  finish();
  StagedOutput staged_report;
  if (!o.report_path.empty())
    PALETTIZE_RETURN_IF_ERROR(StageText(o.report_path, CheckpointReportToJson(rep), &staged_report));
  PALETTIZE_RETURN_IF_ERROR(writer.Finish(&staged_report));
  *report = std::move(rep);
  return Status::OK();
}

Status CompressCheckpoint(const std::string& input, const std::string& output,
                          const CheckpointOptions& options, CheckpointReport* report) {
  return Guarded(input, [&] { return CompressCheckpointUnguarded(input, output, options, report); });
}

}  // namespace palettize
