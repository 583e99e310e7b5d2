#include "plan/plan.h"

#include <set>

namespace palettize {

namespace {

struct Resolved {
  const std::optional<PalettizeConfig>* config = nullptr;  // nullptr: no entry at all (skip)
  std::string source;
};

Resolved ForConsumer(const PlanConsumer& c, const OptimizationConfig& config) {
  if (auto it = config.op_name_configs.find(c.op_name); it != config.op_name_configs.end())
    return {&it->second, "op_name_configs." + c.op_name};
  if (auto it = config.op_type_configs.find(c.op_type); it != config.op_type_configs.end())
    return {&it->second, "op_type_configs." + c.op_type};
  return {&config.global_config, "global_config"};
}

bool SameResolved(const Resolved& a, const Resolved& b) {
  if (a.config->has_value() != b.config->has_value()) return false;
  return !a.config->has_value() || SameConfig(**a.config, **b.config);
}

// The output-channel axis each consumer implies (coremltools' select_input_output_channel_axis):
// conv_transpose 1; matmul y -1 (-2 when transpose_y); matmul x -2 (-1 when transpose_x); else 0.
// Returns {output axis, input axis}, normalised to be non-negative.
std::pair<int, int> ConsumerAxes(const PlanConsumer& c, int rank) {
  int out = 0, in = 1;
  if (c.op_type == "conv_transpose") {
    out = 1, in = 0;
  } else if (c.op_type == "matmul") {
    auto flag = [&](const char* name) {
      auto it = c.scalar_inputs.find(name);
      return it != c.scalar_inputs.end() && it->second != 0;
    };
    if (c.input == "y") {
      if (flag("transpose_y"))
        out = -2, in = -1;
      else
        out = -1, in = -2;
    } else {
      if (flag("transpose_x"))
        out = -1, in = -2;
      else
        out = -2, in = -1;
    }
  }
  if (out < 0) out += rank;
  if (in < 0) in += rank;
  return {out, in};
}

}  // namespace

bool SameConfig(const PalettizeConfig& a, const PalettizeConfig& b) {
  return a.mode == b.mode && a.nbits == b.nbits && a.granularity == b.granularity &&
         a.group_size == b.group_size && a.channel_axis == b.channel_axis && a.cluster_dim == b.cluster_dim &&
         a.enable_per_channel_scale == b.enable_per_channel_scale && a.lut_dtype == b.lut_dtype &&
         a.num_kmeans_workers == b.num_kmeans_workers && a.weight_threshold == b.weight_threshold;
}

std::string WhyNotPalettizable(const PlanInput& w) {
  const std::string& t = w.dtype;
  if (t != "float16" && t != "float32" && t != "int8" && t != "uint8")
    return "dtype " + t + " is not palettized (only float16, float32, int8, uint8)";
  for (const PlanConsumer& c : w.consumers)
    if (c.op_type.rfind("constexpr_", 0) == 0) return "already feeds " + c.op_type + " '" + c.op_name + "'";
  if (w.consumers.empty()) return "no op consumes it";
  if (w.dims.size() < 2) return "rank 1: 1-D tensors are left uncompressed";
  if (w.elements < 10) return "fewer than 10 elements";
  return "";
}

namespace {

// The config of `w` (its name, then each consumer's); an error when its consumers disagree.
Status Resolve(const PlanInput& w, const OptimizationConfig& config, Resolved* r) {
  if (auto it = config.op_name_configs.find(w.name); it != config.op_name_configs.end()) {
    *r = {&it->second, "op_name_configs." + w.name};
    return Status::OK();
  }
  *r = ForConsumer(w.consumers[0], config);
  for (size_t i = 1; i < w.consumers.size(); ++i) {
    Resolved other = ForConsumer(w.consumers[i], config);
    if (!SameResolved(*r, other))
      return Status::InvalidArgument(
          "config: const '" + w.name + "' is consumed by " + w.consumers[0].op_type + " '" +
          w.consumers[0].op_name + "' (" + r->source + ") and " + w.consumers[i].op_type + " '" +
          w.consumers[i].op_name + "' (" + other.source + "), whose configs differ");
  }
  return Status::OK();
}

// The channel axis config `c` gives `w` (into *axis), or why there is none.
std::string ChannelAxis(const PlanInput& w, const PalettizeConfig& c, int* axis) {
  const int rank = int(w.dims.size());
  std::set<int> outs, ins;
  for (const PlanConsumer& con : w.consumers) {
    auto [o, i] = ConsumerAxes(con, rank);
    outs.insert(o);
    ins.insert(i);
  }
  if (outs.size() > 1 || ins.size() > 1) return "its consumers need different channel axes";
  *axis = *outs.begin();
  if (c.granularity == Granularity::kPerGroupedChannel && c.channel_axis.has_value()) {
    int64_t a = *c.channel_axis;
    if (a < -rank || a >= rank)
      return "channel_axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank);
    *axis = int(a < 0 ? a + rank : a);
  }
  if (*axis >= rank)
    return "the consumer's channel axis " + std::to_string(*axis) + " is out of range for rank " +
           std::to_string(rank);
  return "";
}

// Why vectors of cluster_dim channels do not fit `plan`'s groups or `w`'s conv groups, or "".
std::string WhyNotVectors(const PlanInput& w, const WeightPlan& plan) {
  const PalettizeConfig& c = plan.config;
  if (plan.group_size % uint64_t(c.cluster_dim) != 0)
    return "channels per group (" + std::to_string(plan.group_size) + ") are not divisible by cluster_dim " +
           std::to_string(c.cluster_dim);
  // A grouped conv works on [C_out / groups, ...] slices: vectors must not cross them.
  for (const PlanConsumer& con : w.consumers) {
    if (con.op_type != "conv" && con.op_type != "conv_transpose") continue;
    auto g = con.scalar_inputs.find("groups");
    uint64_t groups = g == con.scalar_inputs.end() || g->second < 1 ? 1 : uint64_t(g->second);
    std::vector<uint64_t> eff = w.dims;
    eff[0] /= groups;
    if (eff[size_t(plan.channel_axis)] % uint64_t(c.cluster_dim) != 0)
      return "cluster_dim " + std::to_string(c.cluster_dim) +
             " does not divide the channels of each conv group";
  }
  return "";
}

// Completes `plan` (has_config, with config `c`) for `w`: the reason it is skipped, or axis,
// group size and whether it needs iOS18.
void PlanWithConfig(const PlanInput& w, WeightPlan* plan) {
  const PalettizeConfig& c = plan->config;
  if (w.elements <= uint64_t(c.weight_threshold)) {
    plan->reason =
        std::to_string(w.elements) + " elements <= weight_threshold " + std::to_string(c.weight_threshold);
    return;
  }
  int axis = 0;
  plan->reason = ChannelAxis(w, c, &axis);
  if (!plan->reason.empty()) return;
  const uint64_t channels = w.dims[size_t(axis)];
  plan->channel_axis = axis;
  plan->group_size = c.granularity == Granularity::kPerGroupedChannel ? uint64_t(c.group_size) : channels;
  if (channels % plan->group_size != 0) {
    plan->reason = "channel count " + std::to_string(channels) + " on axis " + std::to_string(axis) +
                   " is not divisible by group_size " + std::to_string(plan->group_size);
    return;
  }
  if (c.cluster_dim > 1) {
    plan->reason = WhyNotVectors(w, *plan);
    if (!plan->reason.empty()) return;
  }
  plan->palettize = true;
  plan->needs_ios18 = (c.granularity == Granularity::kPerGroupedChannel && plan->group_size != channels) ||
                      c.cluster_dim > 1 || c.enable_per_channel_scale || c.lut_dtype != LutDType::kFloat ||
                      c.nbits == 3;
}

}  // namespace

Status PlanWeights(const std::vector<PlanInput>& weights, const OptimizationConfig& config,
                   std::vector<WeightPlan>* out) {
  out->clear();
  for (const PlanInput& w : weights) {
    WeightPlan plan;
    plan.reason = WhyNotPalettizable(w);
    if (plan.reason.empty()) {
      Resolved r;
      PALETTIZE_RETURN_IF_ERROR(Resolve(w, config, &r));
      plan.config_source = r.source;
      if (!r.config->has_value()) {
        plan.reason = "skipped by config (" + r.source + " is null)";
      } else {
        plan.has_config = true;
        plan.config = **r.config;
        PlanWithConfig(w, &plan);
      }
    }
    out->push_back(std::move(plan));
  }
  return Status::OK();
}

}  // namespace palettize
