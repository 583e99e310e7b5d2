// compress for packages: load -> plan (mil_plan.h) -> targets (target_rules.h) -> the spine
// (spine.h: palettize in parallel, largest first) -> rewrite each const as LUT ops, its new blobs
// streamed to the output (shared consts once: shared_consts.h) -> raise opsets -> report.
#include "palettize/compress.h"

#include <chrono>
#include <map>
#include <memory>
#include <set>

#include "blob/blob_reader.h"
#include "compress/compress_package.h"
#include "compress/mil_plan.h"
#include "compress/shared_consts.h"
#include "compress/spine.h"
#include "compress/spine_alloc.h"
#include "compress/tables.h"
#include "compress/target_rules.h"
#include "encode/lut_ops.h"
#include "mil/compressed_weights.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "mil/weights.h"
#include "package/package.h"
#include "package/package_digest.h"
#include "package/tensor_reader.h"
#include "palettize/option_names.h"
#include "sensitivity/sensitivity.h"
#include "util/guard.h"
#include "util/path_rules.h"

namespace palettize {

namespace {

void CollectNames(const mil::Block& b, std::set<std::string>* names) {
  for (const mil::Operation& op : b.operations()) {
    names->insert(OpName(op));
    for (const auto& o : op.outputs()) names->insert(o.name());
    for (const mil::Block& nested : op.blocks()) CollectNames(nested, names);
  }
}

// One entry per const weight, in model order, as planned.
void ReportWeights(const std::vector<ConstWeight>& weights, const std::vector<WeightPlan>& plans,
                   CompressReport* rep) {
  rep->weights.resize(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const ConstWeight& w = weights[i];
    WeightReport& r = rep->weights[i];
    r.program = w.program;
    r.function = w.function;
    r.name = w.name;
    for (const Consumer& c : w.consumers) r.consumers.push_back({c.op_type, c.op_name, c.input});
    r.dtype = DTypeName(w.shape.mil_type);
    r.shape = w.shape.dims;
    uint64_t bytes = 0;
    if (w.shape.bits > 0) BlobDataSize(w.shape.elements, w.shape.bits, &bytes);
    ReportPlan(plans[i], bytes, &r);
  }
}

// Weights already compressed (constexpr_* chains) pass through as they are; they are listed so
// that the report accounts for every weight of the model.
void ReportCompressed(spec::Model& model, CompressReport* rep) {
  for (CompressedWeight& c : FindCompressedWeights(model)) {
    WeightReport r;
    r.program = c.program;
    r.function = c.function;
    r.name = c.name;
    for (const Consumer& u : c.consumers) r.consumers.push_back({u.op_type, u.op_name, u.input});
    r.reason = "already compressed (" + c.chain + "): left as it is";
    r.already_compressed = true;
    r.dtype = c.shape.dims.empty() ? "" : DTypeName(c.shape.mil_type);
    r.shape = c.shape.dims;
    rep->weights.push_back(std::move(r));
  }
}

// A package through the spine: each weight read from its blob or immediate value, rewritten as
// LUT ops whose new blobs are streamed to the output, then the copies of shared consts, the raised
// targets, and the model.
class PackageIO : public SpineIO {
 public:
  PackageIO(Package& package, const std::string& output, const CompressOptions& options,
            const std::vector<ConstWeight>& weights, const std::vector<WeightPlan>& plans,
            ProgramTargets& targets, SharedConsts& shared)
      : package_(package),
        output_(output),
        options_(options),
        weights_(weights),
        plans_(plans),
        targets_(targets),
        shared_(shared),
        data_(weights.size()) {}

  // Read serially: weight files open lazily.
  Status Read(SpineJob* job) override {
    const ConstWeight& w = weights_[job->index];
    TensorData& d = data_[job->index];
    PALETTIZE_RETURN_IF_ERROR(ReadTensorData(package_, w, &d));
    job->data = d.data;
    job->bytes = d.size;
    job->mapped = w.value->has_blobfilevalue();
    return Status::OK();
  }
  void Matched(CompressReport* report) override {
    if (!options_.sensitivity_file.empty()) shared_.CopySensitivity(&report->weights);
  }
  // A const is keyed by its name, which coremltools' op_name_configs looks up first.
  void AllocationFacts(const SpineJob& job, SweepOptions* sweep, std::string* config_key) override {
    const ConstWeight& w = weights_[job.index];
    sweep->widths = *job.allowed_nbits;
    sweep->form =
        FormFor(targets_.at(w.program)) == LutForm::kIOS18 ? StoredForm::kLutIOS18 : StoredForm::kLutIOS16;
    sweep->scale_form = options_.per_channel_scale_form;
    *config_key = w.name;
  }
  const std::string* ConstOutputName(const SpineJob& job) override { return &weights_[job.index].output; }
  std::string WrittenPath() const override { return writer_.staged_path(); }
  void Allocated(const std::vector<bool>& palettized) override {
    DropUnusedTargets(weights_, palettized, &targets_);
  }
  Status Begin() override { return writer_.Begin(&package_, output_, options_.overwrite); }
  uint64_t EncodedBytes(const SpineJob& job, const PalettizedWeight& p) override {
    const ConstWeight& w = weights_[job.index];
    return LutEncodedBytes(p, w.shape.dims, w.shape.mil_type, plans_[job.index].config.lut_dtype,
                           FormFor(targets_.at(w.program)), options_.per_channel_scale_form);
  }
  Status Write(const SpineJob& job, PalettizedWeight&& p, uint64_t /*encoded*/, WeightReport* r) override {
    const BlobSink append = [this](PendingBlob&& b, uint64_t* handle) {
      return writer_.AppendNew(b, handle);
    };
    ScaleFormOutcome scale;
    Status status = Rewrite(job.index, p, shared_.SinkFor(job.index, append), &r->bytes_after, &scale);
    if (scale.wrapper_bytes != 0) {
      r->scale_form = scale.folded ? "folded" : "wrapper";
      r->scale_wrapper_bytes = scale.wrapper_bytes;
      r->scale_folded_bytes = scale.folded_bytes;
      r->scale_form_note = scale.note;
    }
    shared_.Keep(job.index, std::move(p));
    return status;
  }
  Status Finish(CompressReport* report) override {
    const SharedConsts::Rewrite rewrite = [this](size_t i, const PalettizedWeight& p, const BlobSink& sink,
                                                 uint64_t* bytes) { return Rewrite(i, p, sink, bytes); };
    PALETTIZE_RETURN_IF_ERROR(shared_.RewriteCopies(weights_, rewrite, &report->weights));
    RaiseTargets(package_.model(), targets_);
    return writer_.Finish(package_.model());
  }
  Status Commit(const std::vector<StagedOutput*>& staged) override { return writer_.Commit(staged); }

 private:
  // Replaces const `i` by the LUT ops of `p`, whose new blobs go to `sink`.
  Status Rewrite(size_t i, const PalettizedWeight& p, const BlobSink& sink, uint64_t* bytes,
                 ScaleFormOutcome* scale = nullptr) {
    const ConstWeight& w = weights_[i];
    const ProgramTarget& t = targets_.at(w.program);
    const std::string weight_file =
        w.value->has_blobfilevalue() ? w.value->blobfilevalue().filename() : "@model_path/weights/weight.bin";
    return RewriteAsLut(w, p, plans_[i].config.lut_dtype, FormFor(t), weight_file, NamesOf(w, t), sink, bytes,
                        options_.per_channel_scale_form, scale);
  }
  // The names used in w's function, which new ops must not take; gathered on first use.
  std::set<std::string>* NamesOf(const ConstWeight& w, const ProgramTarget& t) {
    const std::string key = w.program + "\n" + w.function;
    auto found = names_.find(key);
    if (found != names_.end()) return &found->second;
    std::set<std::string>& set = names_[key];
    for (const auto& [opset, block] : t.program->functions().at(w.function).block_specializations())
      CollectNames(block, &set);
    return &set;
  }

  Package& package_;
  const std::string& output_;
  const CompressOptions& options_;
  const std::vector<ConstWeight>& weights_;
  const std::vector<WeightPlan>& plans_;
  ProgramTargets& targets_;
  SharedConsts& shared_;
  std::vector<TensorData> data_;  // per weight, for those read
  PackageWriter writer_;
  std::map<std::string, std::set<std::string>> names_;  // per program/function
};

}  // namespace

static Status CompressUnguarded(const std::string& input, const std::string& output,
                                const CompressOptions& options, OutputMeter* meter, CompressReport* report) {
  const auto start = std::chrono::steady_clock::now();
  PALETTIZE_RETURN_IF_ERROR(CheckRunPaths(CompressRunPaths(input, {output, OutputKind::kPackage}, options)));
  PALETTIZE_RETURN_IF_ERROR(ValidateAllocationOptions(options, output));
  const OptimizationConfig& cfg = options.config;
  PALETTIZE_RETURN_IF_ERROR(ValidateConfigs(cfg, "op_type_configs", "op_name_configs"));

  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(input));
  spec::Model& model = package.model();
  std::vector<ConstWeight> weights;
  PALETTIZE_RETURN_IF_ERROR(FindWeights(model, &weights).WithContext(package.model_path()));
  std::vector<WeightPlan> plans;
  // With tables, they alone say which consts are palettized and how (compress/tables.h).
  std::vector<std::optional<PalettizedWeight>> presets;
  if (options.tables_file.empty()) {
    PALETTIZE_RETURN_IF_ERROR(PlanMilWeights(weights, cfg, &plans));
  } else {
    const OptionNames& names = GetOptionNames();
    if (!options.sensitivity_file.empty() || options.objective)
      return Status::InvalidArgument(
          names.tables + ": not with " +
          (options.objective ? std::string("a bit allocation") : names.sensitivity));
    PALETTIZE_RETURN_IF_ERROR(PlanFromTables(package, weights, options.tables_file, &plans, &presets));
  }
  std::unique_ptr<SensitivitySet> sensitivities;
  if (!options.sensitivity_file.empty()) {
    sensitivities = std::make_unique<SensitivitySet>();
    PALETTIZE_RETURN_IF_ERROR(sensitivities->Open(options.sensitivity_file, options.sensitivity_normalize));
  }
  ProgramTargets targets;
  PALETTIZE_RETURN_IF_ERROR(
      PlanTargets(model, weights, plans, options.min_target, &targets, options.objective.has_value()));

  CompressReport rep;
  rep.input = package.path();
  rep.output = output;
  for (const auto& [path, t] : targets) rep.targets.emplace_back(path, t.out);
  ReportWeights(weights, plans, &rep);
  ReportCompressed(model, &rep);
  if (sensitivities) {
    rep.sensitivity_file = options.sensitivity_file;
    rep.sensitivity_normalize = options.sensitivity_normalize;
  }

  SharedConsts shared;
  std::vector<size_t> firsts;
  PALETTIZE_RETURN_IF_ERROR(shared.Group(package, weights, plans, &firsts));
  std::vector<SpineJob> jobs(firsts.size());
  for (size_t k = 0; k < firsts.size(); ++k) {
    const size_t i = firsts[k];
    jobs[k].index = i;
    jobs[k].shape = &weights[i].shape;
    jobs[k].plan = &plans[i];
    jobs[k].allowed_nbits = &AllowedNbits(targets.at(weights[i].program));
    if (!presets.empty() && presets[i]) jobs[k].preset = &*presets[i];
  }
  SpineSettings settings = SpineSettingsFrom(options, start);
  settings.sensitivities = sensitivities.get();
  settings.match_by_value = true;
  settings.report_json = [&rep] { return CompressReportToJson(rep); };
  settings.config = &cfg;
  settings.schema = ConfigSchema::kCoreml;
  settings.meter = meter;
  if (!options.shard.empty() || !options.costs.empty())
    PALETTIZE_RETURN_IF_ERROR(PackageDigest(package, &settings.model_digest));
  PackageIO io(package, output, options, weights, plans, targets, shared);
  PALETTIZE_RETURN_IF_ERROR(RunSpine(std::move(jobs), settings, io, &rep));
  *report = std::move(rep);
  return Status::OK();
}

Status CompressPackage(const std::string& input, const std::string& output, const CompressOptions& options,
                       OutputMeter* meter, CompressReport* report) {
  if (!options.calibration.empty() && meter == nullptr)
    return Status::InvalidArgument(
        GetOptionNames().calibration +
        ": runs through RunCompress (palettize/compress_run.h), which measures the samples");
  return Guarded(input, [&] { return CompressUnguarded(input, output, options, meter, report); });
}

Status Compress(const std::string& input, const std::string& output, const CompressOptions& options,
                CompressReport* report) {
  return CompressPackage(input, output, options, nullptr, report);
}

}  // namespace palettize
