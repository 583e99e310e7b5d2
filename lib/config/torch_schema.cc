// coremltools.optimize.torch's PostTrainingPalettizerConfig schema, for checkpoints: its top-level
// keys, module types and extra rules (the fields are read by Parser::ParseConfig, config.cc).
#include <map>

#include "config/config_parser.h"
#include "palettize/option_names.h"
#include "util/guard.h"

namespace palettize {

Status Parser::ParseTorchTop(const Node& key, const Node& value, OptimizationConfig* out) {
  const std::string& name = key.Scalar();
  if (name == "global_config") return ParseOptional(key, value, name, &out->global_config);
  if (name == "module_name_configs") {
    PALETTIZE_RETURN_IF_ERROR(ParseTable(key, value, name, &out->op_name_configs));
    for (const auto& [module, config] : Pairs(value))
      if (module.Scalar().empty()) return Error(LineOf(module), name, "a module name is empty");
    return Status::OK();
  }
  if (name == "module_type_configs") {
    PALETTIZE_RETURN_IF_ERROR(ParseTable(key, value, name, &out->op_type_configs));
    // "torch.nn.Linear" and "nn.Linear" name the same type as "Linear".
    std::map<std::string, std::optional<PalettizeConfig>> canonical;
    for (const auto& [type_key, config_node] : Pairs(value)) {
      std::string type = type_key.Scalar();
      for (const char* prefix : {"torch.nn.", "nn."})
        if (type.rfind(prefix, 0) == 0) type = type.substr(std::string(prefix).size());
      if (type != "Linear" && type != "Conv1d" && type != "Conv2d" && type != "Embedding")
        return Error(LineOf(type_key), Join(name, type_key.Scalar()),
                     std::string("not a module type palettize infers (") + kTorchModuleTypes + ")");
      if (canonical.count(type))
        return Error(LineOf(type_key), Join(name, type_key.Scalar()), "names " + type + " a second time");
      canonical[type] = out->op_type_configs.at(type_key.Scalar());
    }
    out->op_type_configs = std::move(canonical);
    return Status::OK();
  }
  if (name == "calibration_nsamples")
    return Error(LineOf(key), name,
                 "not supported (palettize does not run the model; pass sensitivities computed beforehand "
                 "with " +
                     GetOptionNames().sensitivity + ")");
  return Error(LineOf(key), name, std::string("unknown key (allowed: ") + kTorchTopKeys + ")");
}

Status Parser::CheckTorchConfig(const std::vector<std::pair<Node, Node>>& pairs, int owner_line,
                                const std::string& path, bool has_group_size,
                                const PalettizeConfig& c) const {
  auto at = [&](const std::string& field) {
    for (const auto& [key, value] : pairs)
      if (key.Scalar() == field) return ValueLine(key, value);
    return owner_line;
  };
  if (c.granularity == Granularity::kPerGroupedChannel && !has_group_size)
    return Error(owner_line, path, "group_size is required with per_grouped_channel granularity");
  if (c.granularity == Granularity::kPerTensor && has_group_size)
    return Error(at("group_size"), Join(path, "group_size"), "must not be set with per_tensor granularity");
  if (c.channel_axis && *c.channel_axis != 0 && *c.channel_axis != 1)
    return Error(at("channel_axis"), Join(path, "channel_axis"),
                 std::to_string(*c.channel_axis) + " is not one of 0, 1, null");
  if (c.cluster_dim > 1 && c.enable_per_channel_scale)
    return Error(at("cluster_dim"), Join(path, "cluster_dim"),
                 std::to_string(c.cluster_dim) + " is not allowed with enable_per_channel_scale");
  return Status::OK();
}

Status ParseTorchPalettizerConfig(const std::string& text, const std::string& file, OptimizationConfig* out) {
  PALETTIZE_RETURN_IF_ERROR(Guarded(file, [&] { return ParseWithSchema(text, file, true, out); }));
  // As PostTrainingPalettizerConfig: with nothing configured, every supported module gets the
  // default config.
  if (!out->global_config && out->op_type_configs.empty() && out->op_name_configs.empty()) {
    out->global_config = PalettizeConfig();
    out->global_config->nbits = kTorchDefaultNbits;
  }
  return Status::OK();
}

}  // namespace palettize
