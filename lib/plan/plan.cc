#include "plan/plan.h"

#include <set>

#include "MIL.pb.h"
#include "mil/dtype.h"

namespace palettize {

namespace {

using MT = mil::DataType;

struct Resolved {
  const std::optional<PalettizeConfig>* config = nullptr;  // nullptr: no entry at all (skip)
  std::string source;
};

Resolved ForConsumer(const Consumer& c, const OptimizationConfig& config) {
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
std::pair<int, int> ConsumerAxes(const Consumer& c, int rank) {
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

std::string WhyNotPalettizable(const ConstWeight& w) {
  const int t = w.shape.mil_type;
  if (t != MT::FLOAT16 && t != MT::FLOAT32 && t != MT::INT8 && t != MT::UINT8)
    return "dtype " + DTypeName(t) + " is not palettized (only float16, float32, int8, uint8)";
  for (const Consumer& c : w.consumers)
    if (c.op_type.rfind("constexpr_", 0) == 0) return "already feeds " + c.op_type + " '" + c.op_name + "'";
  if (w.consumers.empty()) return "no op consumes it";
  if (w.shape.dims.size() < 2) return "rank 1: 1-D tensors are left uncompressed";
  if (w.shape.elements < 10) return "fewer than 10 elements";
  return "";
}

Status PlanWeights(const std::vector<ConstWeight>& weights, const OptimizationConfig& config,
                   std::vector<WeightPlan>* out) {
  out->clear();
  for (const ConstWeight& w : weights) {
    WeightPlan plan;
    plan.reason = WhyNotPalettizable(w);
    if (!plan.reason.empty()) {
      out->push_back(std::move(plan));
      continue;
    }
    Resolved r;
    if (auto it = config.op_name_configs.find(w.name); it != config.op_name_configs.end()) {
      r = {&it->second, "op_name_configs." + w.name};
    } else {
      r = ForConsumer(w.consumers[0], config);
      for (size_t i = 1; i < w.consumers.size(); ++i) {
        Resolved other = ForConsumer(w.consumers[i], config);
        if (!SameResolved(r, other))
          return Status::InvalidArgument(
              "config: const '" + w.name + "' is consumed by " + w.consumers[0].op_type + " '" +
              w.consumers[0].op_name + "' (" + r.source + ") and " + w.consumers[i].op_type + " '" +
              w.consumers[i].op_name + "' (" + other.source + "), whose configs differ");
      }
    }
    plan.config_source = r.source;
    if (!r.config->has_value()) {
      plan.reason = "skipped by config (" + r.source + " is null)";
      out->push_back(std::move(plan));
      continue;
    }
    const PalettizeConfig& c = **r.config;
    plan.has_config = true;
    plan.config = c;
    const int rank = int(w.shape.dims.size());
    if (w.shape.elements <= uint64_t(c.weight_threshold)) {
      plan.reason = std::to_string(w.shape.elements) + " elements <= weight_threshold " +
                    std::to_string(c.weight_threshold);
      out->push_back(std::move(plan));
      continue;
    }
    std::set<int> outs, ins;
    for (const Consumer& con : w.consumers) {
      auto [o, i] = ConsumerAxes(con, rank);
      outs.insert(o);
      ins.insert(i);
    }
    if (outs.size() > 1 || ins.size() > 1) {
      plan.reason = "its consumers need different channel axes";
      out->push_back(std::move(plan));
      continue;
    }
    int axis = *outs.begin();
    if (c.granularity == Granularity::kPerGroupedChannel && c.channel_axis.has_value()) {
      int64_t a = *c.channel_axis;
      if (a < -rank || a >= rank) {
        plan.reason =
            "channel_axis " + std::to_string(a) + " is out of range for rank " + std::to_string(rank);
        out->push_back(std::move(plan));
        continue;
      }
      axis = int(a < 0 ? a + rank : a);
    }
    if (axis >= rank) {
      plan.reason = "the consumer's channel axis " + std::to_string(axis) + " is out of range for rank " +
                    std::to_string(rank);
      out->push_back(std::move(plan));
      continue;
    }
    const uint64_t channels = w.shape.dims[size_t(axis)];
    plan.channel_axis = axis;
    plan.group_size = c.granularity == Granularity::kPerGroupedChannel ? uint64_t(c.group_size) : channels;
    if (channels % plan.group_size != 0) {
      plan.reason = "channel count " + std::to_string(channels) + " on axis " + std::to_string(axis) +
                    " is not divisible by group_size " + std::to_string(plan.group_size);
      out->push_back(std::move(plan));
      continue;
    }
    if (c.cluster_dim > 1) {
      if (plan.group_size % uint64_t(c.cluster_dim) != 0) {
        plan.reason = "channels per group (" + std::to_string(plan.group_size) +
                      ") are not divisible by cluster_dim " + std::to_string(c.cluster_dim);
        out->push_back(std::move(plan));
        continue;
      }
      // A grouped conv works on [C_out / groups, ...] slices: vectors must not cross them.
      bool ok = true;
      for (const Consumer& con : w.consumers) {
        if (con.op_type != "conv" && con.op_type != "conv_transpose") continue;
        auto g = con.scalar_inputs.find("groups");
        uint64_t groups = g == con.scalar_inputs.end() || g->second < 1 ? 1 : uint64_t(g->second);
        std::vector<uint64_t> eff = w.shape.dims;
        eff[0] /= groups;
        if (eff[size_t(axis)] % uint64_t(c.cluster_dim) != 0) ok = false;
      }
      if (!ok) {
        plan.reason = "cluster_dim " + std::to_string(c.cluster_dim) +
                      " does not divide the channels of each conv group";
        out->push_back(std::move(plan));
        continue;
      }
    }
    plan.palettize = true;
    plan.needs_ios18 = (c.granularity == Granularity::kPerGroupedChannel && plan.group_size != channels) ||
                       c.cluster_dim > 1 || c.enable_per_channel_scale || c.lut_dtype != LutDType::kFloat ||
                       c.nbits == 3;
    out->push_back(std::move(plan));
  }
  return Status::OK();
}

}  // namespace palettize
