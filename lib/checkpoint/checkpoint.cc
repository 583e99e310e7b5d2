// compress for safetensors checkpoints: read (mapped) -> plan (checkpoint_plan.h) -> the spine
// (compress/spine.h: palettize in parallel, largest first) -> write, dense in place of each tensor
// or packed (encode/packed_tensor.h) -> report.
#include "palettize/checkpoint.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <map>
#include <memory>

#include "checkpoint/checkpoint_plan.h"
#include "compress/spine.h"
#include "compress/spine_alloc.h"
#include "encode/packed_tensor.h"
#include "palettize/option_names.h"
#include "safetensors/safetensors.h"
#include "safetensors/safetensors_writer.h"
#include "sensitivity/sensitivity.h"
#include "util/file.h"
#include "util/guard.h"
#include "util/path_rules.h"

namespace palettize {

namespace {

const std::vector<int> kAllNbits = {1, 2, 3, 4, 6, 8};  // a checkpoint has no target to restrict them
constexpr const char* kMetadataPrefix = "palettize.";
constexpr const char* kVersionKey = "palettize.version";

bool EndsWithNoCase(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i]) return false;
  return true;
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
    ReportPlan(p.plan, p.tensor->bytes, &r);
    rep->report.weights.push_back(std::move(r));
    rep->modules.push_back({p.module, p.module_type});
  }
  rep->report.input = file.path();
}

// A checkpoint through the spine. Dense: the input's header (metadata and offsets) is kept byte
// for byte, each palettized tensor's decoded values go where its old bytes were, and the rest is
// copied. Packed: a new header, and each palettized tensor replaced by its packed tensors.
class CheckpointIO : public SpineIO {
 public:
  CheckpointIO(const SafeTensorsFile& file, const std::vector<TensorPlan>& plans,
               const OptimizationConfig& config, const std::string& output, bool overwrite, bool packed)
      : file_(file),
        plans_(plans),
        config_(config),
        output_(output),
        overwrite_(overwrite),
        packed_(packed),
        stored_(plans.size()),
        metadata_(file.metadata()) {}

  Status Read(SpineJob* job) override {
    const SafeTensor& t = *plans_[job->index].tensor;
    job->data = t.data;
    job->bytes = t.bytes;
    job->mapped = true;
    return Status::OK();
  }
  // Stored as packed tensors (a dense output reports those bytes too). Keyed by the module, as
  // coremltools.optimize.torch names modules, unless the config already has a key for the tensor's
  // own name, which would win over the module's (checkpoint_plan.h: the longest key).
  void AllocationFacts(const SpineJob& job, SweepOptions* sweep, std::string* config_key) override {
    const TensorPlan& plan = plans_[job.index];
    sweep->widths = *job.allowed_nbits;
    sweep->form = StoredForm::kPacked;
    sweep->packed_dtype = plan.tensor->dtype;
    *config_key = config_.op_name_configs.count(plan.tensor->name) ? plan.tensor->name : plan.module;
  }
  Status Begin() override {
    PALETTIZE_RETURN_IF_ERROR(writer_.Begin(output_, overwrite_));
    if (!packed_) PALETTIZE_RETURN_IF_ERROR(writer_.Append(file_.mapped().data(), file_.header_end()));
    return Status::OK();
  }
  uint64_t EncodedBytes(const SpineJob& job, const PalettizedWeight& p) override {
    const TensorPlan& plan = plans_[job.index];
    return PackedTensorBytes(plan.tensor->dtype, plan.shape, plan.plan, p);
  }
  Status Write(const SpineJob& job, PalettizedWeight&& p, uint64_t encoded, WeightReport* r) override {
    const TensorPlan& plan = plans_[job.index];
    r->bytes_after = encoded;
    if (packed_) {
      PackTensor(plan.tensor->name, plan.tensor->dtype, plan.shape, plan.plan, p, &stored_[job.index],
                 &metadata_[kMetadataPrefix + plan.tensor->name]);
      return Status::OK();
    }
    std::string bytes;
    EncodeFloats(plan.tensor->dtype, p.decoded.data(), p.decoded.size(), &bytes);
    const uint64_t offset = uint64_t(plan.tensor->data - file_.mapped().data());
    written_.emplace_back(offset, bytes.size());
    return writer_.WriteAt(offset, bytes.data(), bytes.size());
  }
  Status Finish(CompressReport* report) override { return packed_ ? WritePacked(*report) : CopyUnwritten(); }
  Status Commit(const std::vector<StagedOutput*>& staged) override { return writer_.Finish(staged); }

 private:
  // Every tensor in the file's order; a palettized one is replaced by its packed tensors.
  Status WritePacked(const CompressReport& report) {
    std::vector<SafeTensorSpec> specs;
    std::vector<std::pair<const void*, uint64_t>> parts;
    for (size_t i = 0; i < plans_.size(); ++i) {
      const SafeTensor& t = *plans_[i].tensor;
      if (!report.weights[i].palettized) {
        specs.push_back({t.name, t.dtype, t.shape});
        parts.emplace_back(t.data, t.bytes);
        continue;
      }
      for (const StoredTensor& s : stored_[i]) {
        specs.push_back(s.spec);
        parts.emplace_back(s.data.data(), s.data.size());
      }
    }
    metadata_[kVersionKey] = "1";
    std::vector<uint64_t> offsets;
    const std::string header = SafeTensorsHeader(specs, metadata_, &offsets);
    PALETTIZE_RETURN_IF_ERROR(writer_.Append(header.data(), header.size()));
    for (const auto& [data, n] : parts) PALETTIZE_RETURN_IF_ERROR(writer_.Append(data, n));
    return Status::OK();
  }
  // Everything not rewritten is copied from the input, in chunks whose pages are then released.
  Status CopyUnwritten() {
    const MappedFile& map = file_.mapped();
    std::sort(written_.begin(), written_.end());
    written_.emplace_back(map.size(), 0);
    uint64_t pos = file_.header_end();
    for (const auto& [begin, n] : written_) {
      for (uint64_t b = pos; b < begin;) {
        const uint64_t chunk = std::min<uint64_t>(begin - b, 64 << 20);
        PALETTIZE_RETURN_IF_ERROR(writer_.WriteAt(b, map.data() + b, chunk));
        ReleaseMappedPages(map.data() + b, chunk);
        b += chunk;
      }
      pos = std::max(pos, begin + n);
    }
    return Status::OK();
  }

  const SafeTensorsFile& file_;
  const std::vector<TensorPlan>& plans_;
  const OptimizationConfig& config_;
  const std::string& output_;
  const bool overwrite_, packed_;
  SafeTensorsWriter writer_;
  std::vector<std::pair<uint64_t, uint64_t>> written_;  // dense: the ranges rewritten
  std::vector<std::vector<StoredTensor>> stored_;       // packed: per tensor
  std::map<std::string, std::string> metadata_;
};

}  // namespace

bool IsCheckpointPath(const std::string& path) { return EndsWithNoCase(path, ".safetensors"); }

static Status CompressCheckpointUnguarded(const std::string& input, const std::string& output,
                                          const CheckpointOptions& options, CheckpointReport* report) {
  const auto start = std::chrono::steady_clock::now();
  const CompressOptions& o = options.compress;
  PALETTIZE_RETURN_IF_ERROR(CheckRunPaths(CompressRunPaths(input, {output, OutputKind::kFile}, o)));
  const OptimizationConfig& cfg = o.config;
  if (o.min_target != DeploymentTarget::kAuto)
    return Status::InvalidArgument(GetOptionNames().min_target + ": a checkpoint has no deployment target");
  PALETTIZE_RETURN_IF_ERROR(ValidateAllocationOptions(o));
  PALETTIZE_RETURN_IF_ERROR(ValidateConfigs(cfg, "module_type_configs", "module_name_configs"));
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

  std::vector<SpineJob> jobs;
  for (size_t i = 0; i < plans.size(); ++i) {
    if (!plans[i].plan.palettize) continue;
    SpineJob job;
    job.index = i;
    job.shape = &plans[i].shape;
    job.plan = &plans[i].plan;
    job.allowed_nbits = &kAllNbits;
    jobs.push_back(std::move(job));
  }
  std::unique_ptr<SensitivitySet> sensitivities;
  if (!o.sensitivity_file.empty()) {
    sensitivities = std::make_unique<SensitivitySet>();
    PALETTIZE_RETURN_IF_ERROR(sensitivities->Open(o.sensitivity_file, o.sensitivity_normalize));
    rep.report.sensitivity_file = o.sensitivity_file;
    rep.report.sensitivity_normalize = o.sensitivity_normalize;
  }
  SpineSettings settings = SpineSettingsFrom(o, start);
  settings.keep_decoded = !options.packed;
  settings.dry_run_bytes = true;
  settings.sensitivities = sensitivities.get();  // by name only: the file holds the weights
  settings.report_json = [&rep] { return CheckpointReportToJson(rep); };
  settings.config = &cfg;
  settings.schema = ConfigSchema::kTorch;
  CheckpointIO io(file, plans, cfg, output, o.overwrite, options.packed);
  PALETTIZE_RETURN_IF_ERROR(RunSpine(std::move(jobs), settings, io, &rep.report));
  *report = std::move(rep);
  return Status::OK();
}

Status CompressCheckpoint(const std::string& input, const std::string& output,
                          const CheckpointOptions& options, CheckpointReport* report) {
  return Guarded(input, [&] { return CompressCheckpointUnguarded(input, output, options, report); });
}

}  // namespace palettize
