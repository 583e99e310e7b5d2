// The module rule and config resolution: checkpoint_plan.h.
#include "checkpoint/checkpoint_plan.h"

#include <cctype>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "MIL.pb.h"

namespace palettize {

namespace {

using MT = mil::DataType;

constexpr const char kWeightSuffix[] = ".weight";
constexpr size_t kWeightSuffixLen = sizeof(kWeightSuffix) - 1;

// The MIL dtype a float tensor is palettized as, or 0 for dtypes that are not palettized.
int FloatMilType(SafeDType t) {
  switch (t) {
    case SafeDType::kF16: return MT::FLOAT16;
    case SafeDType::kBF16: return MT::BFLOAT16;
    case SafeDType::kF32: return MT::FLOAT32;
    case SafeDType::kF64: return MT::FLOAT64;
    default: return 0;
  }
}

bool ContainsEmbed(const std::string& module) {
  std::string lower;
  for (char c : module) lower += char(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("embed") != std::string::npos;
}

// "" when `t` is a module weight (filling module and type), else why it is kept.
std::string InferModule(const SafeTensor& t, std::string* module, std::string* type) {
  const std::string& n = t.name;
  if (n.size() <= kWeightSuffixLen ||
      n.compare(n.size() - kWeightSuffixLen, kWeightSuffixLen, kWeightSuffix) != 0)
    return "not a module weight (only tensors named '<module>.weight' are palettized)";
  if (FloatMilType(t.dtype) == 0)
    return std::string("dtype ") + SafeDTypeName(t.dtype) + " is not palettized (only F16, BF16, F32, F64)";
  *module = n.substr(0, n.size() - kWeightSuffixLen);
  switch (t.shape.size()) {
    case 2: *type = ContainsEmbed(*module) ? "Embedding" : "Linear"; return "";
    case 3: *type = "Conv1d"; return "";
    case 4: *type = "Conv2d"; return "";
    default: break;
  }
  module->clear();
  if (t.shape.size() < 2)
    return "rank " + std::to_string(t.shape.size()) + ": 1-D tensors (norms, biases) are left uncompressed";
  return "rank " + std::to_string(t.shape.size()) +
         ": no module type palettize infers (Linear, Conv1d, Conv2d, Embedding) has it";
}

// The longest key of module_name_configs that applies to tensor `name` of module `module`: the
// name, the module, or a parent module (a prefix of the module ending before a '.'); nullptr when
// none does. One lookup per candidate, longest first, rather than a scan of every key.
const std::pair<const std::string, std::optional<PalettizeConfig>>* LongestKey(
    const std::map<std::string, std::optional<PalettizeConfig>>& keys, const std::string& name,
    const std::string& module) {
  if (keys.empty()) return nullptr;
  for (const std::string* exact : {&name, &module}) {
    const auto it = keys.find(*exact);
    if (it != keys.end()) return &*it;
  }
  for (size_t dot = module.rfind('.'); dot != std::string::npos && dot > 0;
       dot = module.rfind('.', dot - 1)) {
    const auto it = keys.find(module.substr(0, dot));
    if (it != keys.end()) return &*it;
  }
  return nullptr;
}

}  // namespace

PlanInput CheckpointPlanInput(const SafeTensor& t, const std::string& module,
                              const std::string& module_type) {
  PlanInput in;
  in.name = t.name;
  in.dtype = "float32";
  in.dims = t.shape;
  in.elements = t.elements;
  in.consumers.push_back({module_type, module, "weight", {}});
  return in;
}

Status PlanCheckpoint(const std::vector<SafeTensor>& tensors, const OptimizationConfig& config,
                      const std::string& file, std::vector<TensorPlan>* out) {
  out->clear();
  // Every name a key may be to have a tensor under it: each tensor's name and each of its prefixes
  // that ends before a '.'.
  std::unordered_set<std::string_view> under;
  if (!config.op_name_configs.empty())
    for (const SafeTensor& t : tensors) {
      const std::string_view name = t.name;
      under.insert(name);
      for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1))
        under.insert(name.substr(0, dot));
    }
  for (const auto& [key, c] : config.op_name_configs) {
    if (!under.count(key))
      return Status::InvalidArgument(
          file + ": module_name_configs." + key +
          ": no tensor is under this module (names are literal, not regular expressions)");
  }
  for (const SafeTensor& t : tensors) {
    TensorPlan p;
    p.tensor = &t;
    p.shape.mil_type = FloatMilType(t.dtype);
    p.shape.dims = t.shape;
    p.shape.elements = t.elements;
    p.shape.bits = int(SafeDTypeSize(t.dtype) * 8);
    p.plan.reason = InferModule(t, &p.module, &p.module_type);
    if (!p.plan.reason.empty()) {
      p.module_type.clear();
      out->push_back(std::move(p));
      continue;
    }
    const std::optional<PalettizeConfig>* resolved = &config.global_config;
    std::string source = "global_config";
    const auto* named = LongestKey(config.op_name_configs, t.name, p.module);
    if (named) {
      resolved = &named->second, source = "module_name_configs." + named->first;
    } else {
      const auto typed = config.op_type_configs.find(p.module_type);
      if (typed != config.op_type_configs.end())
        resolved = &typed->second, source = "module_type_configs." + p.module_type;
    }
    p.plan.config_source = source;
    if (!resolved->has_value()) {
      p.plan.reason = "skipped by config (" + source + " is null)";
      out->push_back(std::move(p));
      continue;
    }
    // The shared planner checks the threshold, channel axis and group divisibility.
    OptimizationConfig one;
    one.global_config = *resolved;
    std::vector<WeightPlan> plans;
    PALETTIZE_RETURN_IF_ERROR(PlanWeights({CheckpointPlanInput(t, p.module, p.module_type)}, one, &plans));
    p.plan = std::move(plans[0]);
    p.plan.config_source = source;
    out->push_back(std::move(p));
  }
  return Status::OK();
}

}  // namespace palettize
