#include "compress/spine_costs.h"

#include <map>
#include <memory>

#include "alloc/costs_file.h"
#include "palettize/option_names.h"
#include "util/digest.h"
#include "util/staging.h"

namespace palettize {

namespace {

std::string Slice(uint64_t index, uint64_t count) {
  return std::to_string(index) + "/" + std::to_string(count);
}

}  // namespace

Status ValidateCostsOptions(const CompressOptions& o, const std::string& output) {
  const OptionNames& names = GetOptionNames();
  if (!o.costs_out.empty() && o.shard.empty())
    return Status::InvalidArgument(names.costs_out + ": needs " + names.shard + " K/N");
  if (o.shard.empty()) return Status::OK();
  uint64_t index = 0, count = 0;
  PALETTIZE_RETURN_IF_ERROR(ParseShard(o.shard, names.shard, &index, &count));
  auto refuse = [&](const std::string& what) { return Status::InvalidArgument(names.shard + ": " + what); };
  if (o.calibration.empty())
    return refuse("needs " + names.calibration + " (the samples the slice is measured on)");
  if (o.costs_out.empty()) return refuse("needs " + names.costs_out + " FILE (where the slice's costs go)");
  if (!o.costs.empty()) return refuse("not with " + names.costs + " (a slice is measured, not merged)");
  // A slice writes its costs and nothing else.
  if (!output.empty()) return refuse("writes only the costs file, not a package (drop -o " + output + ")");
  if (!o.report_path.empty()) return refuse("writes only the costs file, not a report");
  if (!o.emit_config_path.empty()) return refuse("not with " + names.emit_config);
  if (!o.plot_path.empty()) return refuse("not with " + names.plot);
  if (o.dry_run) return refuse("not with a dry run");
  return Status::OK();
}

std::string CandidatesDigest(const std::vector<MeasuredWeight>& weights) {
  Digest d;
  d.Update(uint64_t(weights.size()));
  for (const MeasuredWeight& w : weights) {
    d.Update(*w.const_name).Update(uint64_t(w.sweep->candidates.size()));
    for (size_t j = 0; j < w.sweep->candidates.size(); ++j) {
      const AllocationCandidate& c = w.sweep->candidates[j];
      d.Update(uint64_t(c.nbits)).Update(c.bytes);
      if (c.nbits == 0) continue;
      const PalettizedWeight& p = w.sweep->results[j];
      d.Update(uint64_t(p.cluster_dim)).Update(uint64_t(p.channel_axis)).Update(p.tables);
      for (const std::vector<double>* v : {&p.lut, &p.lut_scale, &p.lut_offset, &p.channel_scale}) {
        d.Update(uint64_t(v->size()));
        for (double x : *v) d.Update(x);
      }
      for (uint64_t s : p.scale_shape) d.Update(s);
    }
  }
  return d.Hex();
}

Status WriteCostsSlice(const std::vector<MeasuredWeight>& weights, const SpineSettings& settings,
                       const OutputMeter& meter) {
  CostsFile file;
  PALETTIZE_RETURN_IF_ERROR(ParseShard(settings.shard, GetOptionNames().shard, &file.index, &file.count));
  file.model = settings.model_digest;
  file.candidates = CandidatesDigest(weights);
  file.samples = meter.SamplesDigest();
  file.sample_count = meter.Samples();
  file.output_count = meter.Outputs();
  const std::vector<MeasuredTask> tasks = MeasuredTasks(weights);
  file.tasks = tasks.size();
  for (size_t t = size_t(file.index); t < tasks.size(); t += size_t(file.count)) {
    const MeasuredWeight& w = weights[tasks[t].weight];
    file.entries.push_back(
        {t, *w.const_name, w.sweep->candidates[tasks[t].candidate].nbits, w.errors[tasks[t].candidate]});
  }
  StagedOutput staged;
  PALETTIZE_RETURN_IF_ERROR(
      StageText(settings.costs_out, CostsFileToJson(file), &staged, "cannot write costs"));
  return CommitStaged({&staged});
}

Status MergeCosts(std::vector<MeasuredWeight>& weights, const SpineSettings& settings,
                  const OutputMeter* meter, const std::string& input, size_t* samples, size_t* outputs) {
  const OptionNames& names = GetOptionNames();
  const std::string candidates = CandidatesDigest(weights);
  const std::vector<MeasuredTask> tasks = MeasuredTasks(weights);
  std::vector<std::unique_ptr<CostsFile>> files;
  std::map<uint64_t, std::string> seen;  // slice index -> the file that has it
  for (const std::string& path : settings.costs) {
    auto file = std::make_unique<CostsFile>();
    PALETTIZE_RETURN_IF_ERROR(ReadCostsFile(path, file.get()));
    auto differs = [&](const std::string& field, const std::string& what) {
      return Status::InvalidInput(path + ": " + field + ": " + what);
    };
    const std::string& first = settings.costs[0];
    if (file->model != settings.model_digest)
      return differs("model", "measured on another model than " + input + " (other weights or program)");
    if (file->candidates != candidates || file->tasks != tasks.size())
      return differs("candidates",
                     "measured with other options (the config, widths, target or scale form give "
                     "other candidates than this run's)");
    if (meter ? file->samples != meter->SamplesDigest() || file->sample_count != meter->Samples() ||
                    file->output_count != meter->Outputs()
              : !files.empty() &&
                    (file->samples != files[0]->samples || file->sample_count != files[0]->sample_count ||
                     file->output_count != files[0]->output_count))
      return differs("samples", meter ? "measured on other samples than " + names.calibration + "'s"
                                      : "measured on other samples than " + first);
    if (!files.empty() && file->count != files[0]->count)
      return differs("shard", "slice " + Slice(file->index, file->count) + ", but " + first +
                                  " is a slice of " + std::to_string(files[0]->count));
    auto [it, inserted] = seen.emplace(file->index, path);
    if (!inserted)
      return differs("shard",
                     "slice " + Slice(file->index, file->count) + " again (" + it->second + " has it)");
    files.push_back(std::move(file));
  }
  const uint64_t count = files[0]->count;
  for (uint64_t k = 0; k < count; ++k)
    if (!seen.count(k)) {
      std::string given;
      for (const auto& [index, path] : seen) given += (given.empty() ? "" : ", ") + Slice(index, count);
      return Status::InvalidInput(names.costs + ": slice " + Slice(k, count) +
                                  " is missing (given: " + given + ")");
    }
  const size_t pairs = size_t(files[0]->sample_count * files[0]->output_count);
  for (MeasuredWeight& w : weights)
    w.errors.assign(w.sweep->candidates.size(), std::vector<double>(pairs, 0.0));
  for (size_t f = 0; f < files.size(); ++f)
    for (size_t k = 0; k < files[f]->entries.size(); ++k) {
      CostsEntry& e = files[f]->entries[k];
      MeasuredWeight& w = weights[tasks[e.task].weight];
      const int nbits = w.sweep->candidates[tasks[e.task].candidate].nbits;
      if (e.weight != *w.const_name || e.nbits != nbits)
        return Status::InvalidInput(settings.costs[f] + ": costs[" + std::to_string(k) + "]: '" + e.weight +
                                    "' at " + std::to_string(e.nbits) + " bits, but task " +
                                    std::to_string(e.task) + " is '" + *w.const_name + "' at " +
                                    std::to_string(nbits));
      w.errors[tasks[e.task].candidate] = std::move(e.errors);
    }
  *samples = size_t(files[0]->sample_count);
  *outputs = size_t(files[0]->output_count);
  return Status::OK();
}

}  // namespace palettize
