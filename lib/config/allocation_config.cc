#include "config/allocation_config.h"

#include <cstdio>
#include <map>

#include "util/staging.h"

namespace palettize {

namespace {

bool SameOptional(const std::optional<PalettizeConfig>& a, const std::optional<PalettizeConfig>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  // Every field, as plan.cc's SameConfig (config/ sits below plan/).
  return a->mode == b->mode && a->nbits == b->nbits && a->granularity == b->granularity &&
         a->group_size == b->group_size && a->channel_axis == b->channel_axis &&
         a->cluster_dim == b->cluster_dim && a->enable_per_channel_scale == b->enable_per_channel_scale &&
         a->lut_dtype == b->lut_dtype && a->num_kmeans_workers == b->num_kmeans_workers &&
         a->weight_threshold == b->weight_threshold;
}

std::string Describe(const std::optional<PalettizeConfig>& c) {
  return c ? DescribeConfig(*c) : "kept uncompressed (null)";
}

std::string Comment(const Allocation& a) {
  char line[256];
  const char* flag = a.objective == AllocationObjective::kTargetBpw    ? "--target-bpw"
                     : a.objective == AllocationObjective::kTargetSize ? "--target-size"
                                                                       : "--min-snr";
  std::snprintf(line, sizeof line,
                "palettize bit allocation, %s %.17g: %zu weights, %llu bytes, %.4f bits per weight, "
                "total cost %.6g, gap %.6g",
                flag, a.budget, a.weights.size(), static_cast<unsigned long long>(a.bytes), a.bpw,
                a.total_cost, a.gap);
  return line;
}

}  // namespace

Status AllocationConfig(const Allocation& allocation, const OptimizationConfig& base,
                        OptimizationConfig* out) {
  OptimizationConfig config = base;
  std::map<std::string, const WeightAllocation*> first;  // config_key -> the weight that set it
  for (const WeightAllocation& w : allocation.weights) {
    const std::string where = "allocation: weight '" + w.name + "'";
    if (w.config_key.empty()) return Status::InvalidArgument(where + ": no config key");
    if (w.chosen < 0 || size_t(w.chosen) >= w.candidates.size())
      return Status::InvalidArgument(where + ": chosen candidate " + std::to_string(w.chosen) +
                                     " is not one of its " + std::to_string(w.candidates.size()));
    std::optional<PalettizeConfig> chosen;
    if (const int nbits = w.candidates[size_t(w.chosen)].nbits; nbits != 0) {
      chosen = w.config;
      chosen->nbits = nbits;
      PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(*chosen, where));
    }
    const auto [it, added] = first.emplace(w.config_key, &w);
    if (!added && !SameOptional(config.op_name_configs[w.config_key], chosen))
      return Status::InvalidArgument(where + " and weight '" + it->second->name + "' share the config key '" +
                                     w.config_key + "' but were given different configs (" +
                                     Describe(chosen) + "; " +
                                     Describe(config.op_name_configs[w.config_key]) + ")");
    config.op_name_configs[w.config_key] = chosen;
  }
  *out = std::move(config);
  return Status::OK();
}

Status AllocationConfigYaml(const Allocation& allocation, const OptimizationConfig& base, ConfigSchema schema,
                            std::string* yaml) {
  OptimizationConfig config;
  PALETTIZE_RETURN_IF_ERROR(AllocationConfig(allocation, base, &config));
  return ConfigYaml(config, schema, Comment(allocation), yaml);
}

Status WriteAllocationConfig(const std::string& path, const Allocation& allocation,
                             const OptimizationConfig& base, ConfigSchema schema) {
  std::string yaml;
  PALETTIZE_RETURN_IF_ERROR(AllocationConfigYaml(allocation, base, schema, &yaml));
  StagedOutput staged;
  PALETTIZE_RETURN_IF_ERROR(StageText(path, yaml, &staged, "cannot write config"));
  return CommitStaged({&staged});
}

}  // namespace palettize
