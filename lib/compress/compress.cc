#include "palettize/compress.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <set>

#include "encode/lut_ops.h"
#include "mil/compressed_weights.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "mil/weights.h"
#include "package/package.h"
#include "package/tensor_reader.h"
#include "palettize/option_names.h"
#include "palettizer/weight_palettizer.h"
#include "plan/plan.h"
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

// "CoreML5" -> iOS 15 (../shared/coreml-format.md section 4).
int OpsetToIOS(const std::string& opset) {
  if (opset.rfind("CoreML", 0) != 0) return 15;
  try {
    return std::stoi(opset.substr(6)) + 10;
  } catch (...) {
    return 15;
  }
}

int SpecVersionFor(int ios) { return ios - 9; }  // iOS16 -> 7, iOS17 -> 8, iOS18 -> 9

std::string WhyIOS18(const WeightPlan& p) {
  const PalettizeConfig& c = p.config;
  if (c.nbits == 3) return "nbits 3";
  if (c.cluster_dim > 1) return "cluster_dim " + std::to_string(c.cluster_dim);
  if (c.enable_per_channel_scale) return "enable_per_channel_scale";
  if (c.lut_dtype != LutDType::kFloat) return "an 8-bit integer LUT";
  return "per_grouped_channel with more than one group";
}

// The first op whose iOS16 form iOS18 redefined (constexpr_lut_to_dense, constexpr_sparse_to_dense
// take inputs instead of attributes there), or "".
std::string FindIOS16OnlyOp(const mil::Block& b) {
  for (const mil::Operation& op : b.operations()) {
    if (op.type() == "constexpr_lut_to_dense" || op.type() == "constexpr_sparse_to_dense")
      return op.type() + " '" + OpName(op) + "'";
    for (const mil::Block& nested : op.blocks()) {
      std::string found = FindIOS16OnlyOp(nested);
      if (!found.empty()) return found;
    }
  }
  return "";
}

void CollectNames(const mil::Block& b, std::set<std::string>* names) {
  for (const mil::Operation& op : b.operations()) {
    names->insert(OpName(op));
    for (const auto& o : op.outputs()) names->insert(o.name());
    for (const mil::Block& nested : op.blocks()) CollectNames(nested, names);
  }
}

// Finds the sensitivity of weight `w` (to be palettized) and notes it in its report. A name match
// of the wrong shape is an error.
Status MatchSensitivity(SensitivitySet& set, const ConstWeight& w, const WeightPlan& plan,
                        const TensorData& data, SensitivityMatch* match, WeightReport* r) {
  PALETTIZE_RETURN_IF_ERROR(set.Match(w, data.data, match));
  r->sensitivity_checked = true;
  if (match->key.empty()) {
    r->sensitivity_note = "no sensitivity tensor named '" + w.name + "' or holding its values: plain k-means";
    return Status::OK();
  }
  r->sensitivity = match->tensor;
  r->sensitivity_match = match->match;
  if (plan.config.mode != PalettizeMode::kKMeans) {
    r->sensitivity_note =
        std::string("not used: ") + ModeName(plan.config.mode) + " tables do not depend on it";
    *match = SensitivityMatch();
  }
  return Status::OK();
}

struct ProgramTarget {
  spec::Model* owner = nullptr;
  mil::Program* program = nullptr;
  int current = 15;  // iOS version of its opset
  int out = 15;
  bool any_palettized = false;
  std::string needs_ios18;  // the first weight that needs iOS18, and why
};

}  // namespace

static Status CompressUnguarded(const std::string& input, const std::string& output,
                                const CompressOptions& options, CompressReport* report) {
  const auto start = Clock::now();
  PALETTIZE_RETURN_IF_ERROR(CheckRunPaths(CompressRunPaths(input, {output, OutputKind::kPackage}, options)));
  const OptimizationConfig& cfg = options.config;
  if (cfg.global_config)
    PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*cfg.global_config, "global_config"));
  for (const auto& [k, v] : cfg.op_type_configs)
    if (v) PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*v, "op_type_configs." + k));
  for (const auto& [k, v] : cfg.op_name_configs)
    if (v) PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*v, "op_name_configs." + k));

  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(input));
  spec::Model& model = package.model();
  std::vector<ConstWeight> weights;
  PALETTIZE_RETURN_IF_ERROR(FindWeights(model, &weights).WithContext(package.model_path()));
  std::vector<WeightPlan> plans;
  PALETTIZE_RETURN_IF_ERROR(PlanWeights(weights, cfg, &plans));
  std::unique_ptr<SensitivitySet> sensitivities;
  if (!options.sensitivity_file.empty()) {
    sensitivities = std::make_unique<SensitivitySet>();
    PALETTIZE_RETURN_IF_ERROR(sensitivities->Open(options.sensitivity_file, options.sensitivity_normalize));
  }

  // Targets per ML Program: the input's, raised to what the configs need.
  std::map<std::string, ProgramTarget> targets;
  ForEachProgram(model, [&](const std::string& path, spec::Model& owner, mil::Program& program) {
    ProgramTarget t;
    t.owner = &owner;
    t.program = &program;
    for (const auto& [name, f] : program.functions()) t.current = std::max(t.current, OpsetToIOS(f.opset()));
    targets[path] = t;
  });
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!plans[i].palettize) continue;
    ProgramTarget& t = targets[weights[i].program];
    t.any_palettized = true;
    if (plans[i].needs_ios18 && t.needs_ios18.empty())
      t.needs_ios18 = "weight '" + weights[i].name + "' needs iOS18 (" + WhyIOS18(plans[i]) + ")";
  }
  const int forced = int(options.min_target);
  for (auto& [path, t] : targets) {
    const std::string where = path.empty() ? "" : "program " + path + ": ";
    if (forced != 0 && t.current > forced)
      return Status::InvalidArgument(where + "the input targets iOS" + std::to_string(t.current) + "; " +
                                     GetOptionNames().min_target + " iOS" + std::to_string(forced) +
                                     " cannot lower it");
    if (forced != 0 && forced < 18 && !t.needs_ios18.empty())
      return Status::InvalidArgument(t.needs_ios18 + ", but " + GetOptionNames().min_target + " is iOS" +
                                     std::to_string(forced));
    t.out = std::max(t.current, forced);
    if (t.any_palettized) t.out = std::max(t.out, t.needs_ios18.empty() ? 16 : 18);
    if (t.current < 18 && t.out >= 18) {
      for (const auto& [fname, f] : t.program->functions())
        for (const auto& [opset, block] : f.block_specializations()) {
          std::string op = FindIOS16OnlyOp(block);
          if (!op.empty())
            return Status::InvalidArgument(
                where + (t.needs_ios18.empty() ? "the output targets iOS18" : t.needs_ios18) +
                ", but the input already holds " + op + " in its iOS" + std::to_string(t.current) +
                " form, which iOS18 does not accept; use a config that fits iOS" + std::to_string(t.current) +
                " or decompress the model first");
        }
    }
  }

  CompressReport rep;
  rep.input = package.path();
  rep.output = output;
  for (const auto& [path, t] : targets) rep.targets.emplace_back(path, t.out);
  rep.weights.resize(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const ConstWeight& w = weights[i];
    WeightReport& r = rep.weights[i];
    r.program = w.program;
    r.function = w.function;
    r.name = w.name;
    for (const Consumer& c : w.consumers) r.consumers.push_back({c.op_type, c.op_name, c.input});
    r.palettized = plans[i].palettize;
    r.reason = plans[i].reason;
    r.has_config = plans[i].has_config;
    r.config = plans[i].config;
    r.config_source = plans[i].config_source;
    r.dtype = DTypeName(w.shape.mil_type);
    r.shape = w.shape.dims;
    if (w.shape.bits > 0) BlobDataSize(w.shape.elements, w.shape.bits, &r.bytes_before);
    r.bytes_after = r.bytes_before;
  }
  // Weights already compressed (constexpr_* chains) pass through as they are; they are listed so
  // that the report accounts for every weight of the model.
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
    rep.weights.push_back(std::move(r));
  }

  // A const that several functions share (one blob, one resolved config) is palettized once, and
  // every copy points at the same new blobs (multifunction models deduplicate their weights).
  // `jobs` holds the first of each; `copies` the rest, done from their first's result.
  std::vector<size_t> jobs, copies;
  std::vector<size_t> primary(weights.size());
  std::map<std::string, size_t> first_of_blob;
  for (size_t i = 0; i < weights.size(); ++i) {
    primary[i] = i;
    if (!plans[i].palettize) continue;
    const ConstWeight& w = weights[i];
    if (w.value->has_blobfilevalue()) {
      const auto& b = w.value->blobfilevalue();
      std::string file;  // two spellings of one file are one blob
      PALETTIZE_RETURN_IF_ERROR(package.NormalizeBlobFileName(b.filename(), &file));
      std::string key = w.program + "\n" + file + "\n" + std::to_string(b.offset()) + "\n" +
                        DescribeConfig(plans[i].config) + "\n" + std::to_string(plans[i].channel_axis) +
                        "\n" + std::to_string(plans[i].group_size) + "\n" + std::to_string(w.shape.mil_type);
      for (uint64_t d : w.shape.dims) key += "x" + std::to_string(d);
      const auto [it, inserted] = first_of_blob.emplace(key, i);
      if (!inserted) {
        primary[i] = it->second;
        copies.push_back(i);
        continue;
      }
    }
    jobs.push_back(i);
  }
  // Largest first, so that no thread is left with one big weight at the end while the others
  // idle. The order is fixed by the sizes (ties in model order), so the output does not depend
  // on the thread count; new blobs go into weight.bin in this order.
  std::stable_sort(jobs.begin(), jobs.end(), [&](size_t a, size_t b) {
    return rep.weights[a].bytes_before > rep.weights[b].bytes_before;
  });
  // Read every weight to palettize (serially: weight files open lazily), then cluster in parallel.
  std::vector<TensorData> data(weights.size());
  for (size_t i : jobs) PALETTIZE_RETURN_IF_ERROR(ReadTensorData(package, weights[i], &data[i]));
  std::vector<SensitivityMatch> matches(weights.size());
  if (sensitivities) {
    rep.sensitivity_file = options.sensitivity_file;
    rep.sensitivity_normalize = options.sensitivity_normalize;
    for (size_t i : jobs)
      PALETTIZE_RETURN_IF_ERROR(
          MatchSensitivity(*sensitivities, weights[i], plans[i], data[i], &matches[i], &rep.weights[i]));
    for (size_t c : copies) {
      const WeightReport& first = rep.weights[primary[c]];
      WeightReport& r = rep.weights[c];
      r.sensitivity_checked = true;
      r.sensitivity = first.sensitivity;
      r.sensitivity_match = first.sensitivity_match;
      r.sensitivity_note = first.sensitivity_note;
    }
    rep.unused_sensitivities = sensitivities->Unused();
  }
  if (options.dry_run) {
    for (auto& r : rep.weights) (r.palettized ? rep.palettized : rep.skipped)++;
    rep.wall_seconds = Seconds(start);
    *report = std::move(rep);
    return Status::OK();
  }
  // Stream: weights are palettized in parallel and encoded, in that order, as they finish; each
  // one's new blobs go straight to the output, so memory holds only the weights in flight.
  PackageWriter writer;
  PALETTIZE_RETURN_IF_ERROR(writer.Begin(&package, output, options.overwrite));
  struct Work {
    size_t index = 0;
    PalettizedWeight result;
    bool ok = false;
    std::string failure;
  };
  std::map<std::string, std::set<std::string>> names;  // per program/function
  // The names used in w's function, which new ops must not take; gathered on first use.
  auto names_of = [&](const ConstWeight& w, const ProgramTarget& t) {
    const std::string key = w.program + "\n" + w.function;
    auto found = names.find(key);
    if (found != names.end()) return &found->second;
    std::set<std::string>& set = names[key];
    for (const auto& [opset, block] : t.program->functions().at(w.function).block_specializations())
      CollectNames(block, &set);
    return &set;
  };
  Status status;
  size_t done = 0;
  uint64_t bytes_total = 0, bytes_done = 0;
  for (size_t i : jobs) bytes_total += rep.weights[i].bytes_before;
  const BlobSink sink = [&](PendingBlob&& b, uint64_t* handle) { return writer.AppendNew(b, handle); };
  // The first of each shared const: its result and the handles of the blobs it wrote, in order.
  struct Shared {
    PalettizedWeight result;
    std::vector<std::pair<uint64_t, size_t>> blobs;  // handle, bytes
  };
  std::map<size_t, Shared> shared;
  for (size_t c : copies) shared[primary[c]];
  auto palettize = [&](size_t i) {
    auto work = std::make_shared<Work>();
    work->index = i;
    if (!status.ok()) return work;  // an earlier write failed: finish quickly
    const auto t0 = Clock::now();
    const ConstWeight& w = weights[i];
    const int out_ios = targets.at(w.program).out;
    const std::vector<int> allowed =
        out_ios >= 18 ? std::vector<int>{1, 2, 3, 4, 6, 8} : std::vector<int>{1, 2, 4, 6, 8};
    const ElementWeights* sens = matches[i].key.empty() ? nullptr : &matches[i].weights;
    work->ok = PalettizeWeightRaw(data[i].data, w.shape, plans[i], allowed, false, &work->result,
                                  &work->failure, sens);
    if (sens) sens->Release(0, sens->tensor->elements);
    // Done with this weight's input pages (read again only if Finish copies it unchanged).
    if (w.value->has_blobfilevalue()) ReleaseMappedPages(data[i].data, data[i].size);
    rep.weights[i].seconds = Seconds(t0);
    return work;
  };
  auto encode = [&](const std::shared_ptr<Work>& work) {
    const size_t i = work->index;
    WeightReport& r = rep.weights[i];
    const ConstWeight& w = weights[i];
    ++done;
    bytes_done += r.bytes_before;
    if (options.progress) options.progress(done, jobs.size(), bytes_done, bytes_total);
    if (!status.ok()) return;
    if (!work->ok) {
      r.palettized = false;
      r.reason = work->failure;
      return;
    }
    const PalettizedWeight& p = work->result;
    const ProgramTarget& t = targets.at(w.program);
    const LutForm form = t.out >= 18 ? LutForm::kIOS18 : LutForm::kIOS16;
    const uint64_t encoded = LutEncodedBytes(p, w.shape.mil_type, plans[i].config.lut_dtype, form);
    if (encoded >= r.bytes_before) {
      r.palettized = false;
      r.reason = "palettized it would take " + std::to_string(encoded) + " bytes, not less than its " +
                 std::to_string(r.bytes_before);
      return;
    }
    std::set<std::string>* used_names = names_of(w, t);
    std::string weight_file =
        w.value->has_blobfilevalue() ? w.value->blobfilevalue().filename() : "@model_path/weights/weight.bin";
    const auto found = shared.find(i);
    if (found == shared.end()) {
      status =
          RewriteAsLut(w, p, plans[i].config.lut_dtype, form, weight_file, used_names, sink, &r.bytes_after);
    } else {
      auto& blobs = found->second.blobs;
      const BlobSink recording = [&](PendingBlob&& b, uint64_t* handle) {
        const size_t bytes = b.data.size();
        PALETTIZE_RETURN_IF_ERROR(writer.AppendNew(b, handle));
        blobs.emplace_back(*handle, bytes);
        return Status::OK();
      };
      status = RewriteAsLut(w, p, plans[i].config.lut_dtype, form, weight_file, used_names, recording,
                            &r.bytes_after);
      found->second.result = std::move(work->result);
    }
    const PalettizedWeight& kept = found == shared.end() ? p : found->second.result;
    r.nbits = kept.nbits;
    r.luts = kept.tables;
    r.sse = kept.sse;
    r.max_abs_error = kept.max_abs_error;
    r.snr_db = kept.snr_db;
    r.weighted_sse = kept.weighted_sse;
  };
  RunOrdered(jobs, options.threads, palettize, encode);
  PALETTIZE_RETURN_IF_ERROR(status);

  // The copies of shared consts, in model order: the same ops, pointing at the first's blobs.
  for (size_t c : copies) {
    const size_t i = primary[c];
    const WeightReport& first = rep.weights[i];
    WeightReport& r = rep.weights[c];
    r.shared_with = (first.function.empty() ? "" : first.function + "/") + first.name;
    if (!first.palettized) {
      r.palettized = false;
      r.reason = first.reason;
      continue;
    }
    const ConstWeight& w = weights[c];
    const ProgramTarget& t = targets.at(w.program);
    const LutForm form = t.out >= 18 ? LutForm::kIOS18 : LutForm::kIOS16;
    const Shared& s = shared.at(i);
    size_t next_blob = 0;
    const BlobSink replay = [&](PendingBlob&& b, uint64_t* handle) {
      if (next_blob >= s.blobs.size() || s.blobs[next_blob].second != b.data.size())
        return Status::InvalidInput(w.name + ": internal error: a shared const's copy encodes differently");
      *handle = s.blobs[next_blob++].first;
      return Status::OK();
    };
    PALETTIZE_RETURN_IF_ERROR(RewriteAsLut(w, s.result, plans[c].config.lut_dtype, form,
                                           w.value->blobfilevalue().filename(), names_of(w, t), replay,
                                           &r.bytes_after));
    r.nbits = first.nbits;
    r.luts = first.luts;
    r.sse = first.sse;
    r.max_abs_error = first.max_abs_error;
    r.snr_db = first.snr_db;
    r.weighted_sse = first.weighted_sse;
  }

  // Raise specification versions and opsets where the output needs a newer target.
  int max_spec = 0;
  for (auto& [path, t] : targets) {
    if (t.out > t.current) {
      t.owner->set_specificationversion(std::max(t.owner->specificationversion(), SpecVersionFor(t.out)));
      const std::string opset = "CoreML" + std::to_string(t.out - 10);
      for (auto& [fname, f] : *t.program->mutable_functions()) {
        if (OpsetToIOS(f.opset()) >= t.out) continue;
        auto& blocks = *f.mutable_block_specializations();
        if (blocks.count(f.opset()) && !blocks.count(opset)) {
          blocks[opset].Swap(&blocks.at(f.opset()));
          blocks.erase(f.opset());
        }
        f.set_opset(opset);
      }
    }
    max_spec = std::max(max_spec, t.owner->specificationversion());
  }
  if (model.specificationversion() < max_spec) model.set_specificationversion(max_spec);

  PALETTIZE_RETURN_IF_ERROR(writer.Finish(model));

  for (const WeightReport& r : rep.weights) {
    (r.palettized ? rep.palettized : rep.skipped)++;
    rep.bytes_before += r.bytes_before;
    rep.bytes_after += r.bytes_after;
  }
  rep.wall_seconds = Seconds(start);
  // The report is complete before the package is committed, and both are committed together:
  // a report that cannot be written leaves every previous file as it was.
  StagedOutput staged_report;
  if (!options.report_path.empty())
    PALETTIZE_RETURN_IF_ERROR(StageText(options.report_path, CompressReportToJson(rep), &staged_report));
  PALETTIZE_RETURN_IF_ERROR(writer.Commit(&staged_report));
  *report = std::move(rep);
  return Status::OK();
}

Status Compress(const std::string& input, const std::string& output, const CompressOptions& options,
                CompressReport* report) {
  return Guarded(input, [&] { return CompressUnguarded(input, output, options, report); });
}

}  // namespace palettize
