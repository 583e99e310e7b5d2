// OptimizationConfig from YAML, with coremltools' OptimizationConfig.from_yaml semantics made
// strict: coremltools goes through PyYAML + cattrs, which silently coerce "6" or 6.5 to an int and
// let the last of two duplicate keys win; here each of those is an error naming its line.
#include "palettize/config.h"

#include <yaml-cpp/exceptions.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "config/config_parser.h"
#include "config/config_rules.h"
#include "palettize/overrides.h"
#include "util/guard.h"

namespace palettize {

Status Parser::Error(int line, const std::string& path, const std::string& problem) const {
  std::string msg = file_ + ":" + std::to_string(line) + ": ";
  if (!path.empty()) msg += OneLine(path) + ": ";
  return Status::InvalidArgument(msg + problem);
}

Status Parser::ParseTop(const Node& root, OptimizationConfig* out) {
  const char* top_keys = torch_ ? kTorchTopKeys : kTopKeys;
  if (root.IsNull()) return Status::OK();
  if (!root.IsMap())
    return Error(LineOf(root), "", Show(root) + " is not a mapping (allowed keys: " + top_keys + ")");
  PALETTIZE_RETURN_IF_ERROR(CheckKeys(root, ""));
  for (const auto& [key, value] : Pairs(root)) {
    const std::string name = key.Scalar();
    if (torch_) {
      PALETTIZE_RETURN_IF_ERROR(ParseTorchTop(key, value, out));
    } else if (name == "config_type") {
      PALETTIZE_RETURN_IF_ERROR(CheckConfigType(key, value, name));
    } else if (name == "global_config") {
      PALETTIZE_RETURN_IF_ERROR(ParseOptional(key, value, name, &out->global_config));
    } else if (name == "op_type_configs" || name == "op_name_configs") {
      auto& table = name == "op_type_configs" ? out->op_type_configs : out->op_name_configs;
      PALETTIZE_RETURN_IF_ERROR(ParseTable(key, value, name, &table));
    } else {
      return Error(LineOf(key), name, std::string("unknown key (allowed: ") + kTopKeys + ")");
    }
  }
  return Status::OK();
}

Status Parser::CheckKeys(const Node& map, const std::string& path) const {
  // A hash set, not a scan of the keys before: op_name_configs may name 200k ops.
  std::unordered_map<std::string, int> seen;
  for (const auto& [key, value] : Pairs(map)) {
    if (!key.IsScalar())
      return Error(LineOf(key), path, Show(key) + " is not a valid key (keys are strings)");
    const auto [first, added] = seen.emplace(key.Scalar(), LineOf(key));
    if (!added)
      return Error(LineOf(key), Join(path, key.Scalar()),
                   "duplicate key (first at line " + std::to_string(first->second) + ")");
  }
  return Status::OK();
}

std::string Parser::Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

Status Parser::CheckConfigType(const Node& key, const Node& value, const std::string& path) const {
  if (value.IsScalar() && value.Scalar() == kConfigType) return Status::OK();
  return Error(
      ValueLine(key, value), path,
      Show(value) + " is not supported (only " + kConfigType + "; palettize does not quantize or prune)");
}

Status Parser::ParseTable(const Node& key, const Node& value, const std::string& path,
                          std::map<std::string, std::optional<PalettizeConfig>>* out) {
  out->clear();
  if (value.IsNull()) return Status::OK();
  if (!value.IsMap())
    return Error(ValueLine(key, value), path,
                 Show(value) + " is not a mapping from name to config (or null)");
  PALETTIZE_RETURN_IF_ERROR(CheckKeys(value, path));
  for (const auto& [name, config_node] : Pairs(value)) {
    std::optional<PalettizeConfig> config;
    PALETTIZE_RETURN_IF_ERROR(ParseOptional(name, config_node, Join(path, name.Scalar()), &config));
    (*out)[name.Scalar()] = config;
  }
  return Status::OK();
}

Status Parser::ParseOptional(const Node& key, const Node& value, const std::string& path,
                             std::optional<PalettizeConfig>* out) {
  out->reset();
  if (value.IsNull()) return Status::OK();
  if (!value.IsMap())
    return Error(ValueLine(key, value), path,
                 Show(value) + (torch_ ? " is not a mapping (a ModulePostTrainingPalettizerConfig) or null"
                                       : " is not a mapping (an OpPalettizerConfig) or null"));
  PalettizeConfig config;
  PALETTIZE_RETURN_IF_ERROR(ParseConfig(value, LineOf(key), path, &config));
  *out = config;
  return Status::OK();
}

Status Parser::ParseConfig(const Node& map, int owner_line, const std::string& path, PalettizeConfig* c) {
  PALETTIZE_RETURN_IF_ERROR(CheckKeys(map, path));
  const auto pairs = Pairs(map);
  bool has_nbits = false, has_group_size = false;
  for (const auto& [key, v] : pairs) {
    // The Torch schema spells nbits n_bits (nbits is accepted too, but not both).
    const std::string name = torch_ && key.Scalar() == "n_bits" ? "nbits" : key.Scalar();
    const std::string at = Join(path, key.Scalar());
    const char* allowed = torch_ ? kTorchConfigKeys : kConfigKeys;
    if (torch_ && (name == "config_type" || name == "num_kmeans_workers" || name == "lut_function"))
      return Error(LineOf(key), at, std::string("unknown key (allowed: ") + allowed + ")");
    const int line = ValueLine(key, v);
    const std::string lower = v.IsScalar() ? Lower(v.Scalar()) : std::string();
    int64_t i = 0;
    if (name == "mode") {
      if (!v.IsScalar() || !ParseMode(v.Scalar(), &c->mode).ok()) {
        if (lower == "custom")
          return Error(line, at, "custom mode needs a Python lut_function and is not supported");
        return Error(line, at, Show(v) + " is not one of kmeans, uniform, unique");
      }
    } else if (name == "nbits") {
      if (has_nbits) return Error(LineOf(key), at, "n_bits and nbits name the same field; give one");
      has_nbits = true;
      // 0 is PalettizeConfig's "unset", so an explicit 0 must fail here rather than read as absent.
      if (v.IsNull()) {
        c->nbits = 0;
      } else if (AsInt(v, &i) && ValidNbits(i)) {
        c->nbits = static_cast<int>(i);
      } else {
        return Error(line, at, NotNbits(Show(v)));
      }
    } else if (name == "granularity") {
      if (!v.IsScalar() || !ParseGranularity(v.Scalar(), &c->granularity).ok()) {
        if (lower == "per_channel" || lower == "per_block")
          return Error(
              line, at,
              Show(v) + " is not supported for palettization (only per_tensor, per_grouped_channel)");
        return Error(line, at, Show(v) + " is not one of per_tensor, per_grouped_channel");
      }
    } else if (name == "group_size" || name == "cluster_dim" || name == "num_kmeans_workers" ||
               name == "weight_threshold") {
      const int min = name == "weight_threshold" ? 0 : 1;
      if (name == "group_size") has_group_size = true;
      if (torch_ && name == "cluster_dim" && v.IsNull()) {
        c->cluster_dim = 1;  // coremltools.optimize.torch: None means scalar tables
        continue;
      }
      if (!AsInt(v, &i)) {
        std::string problem = NotIntAtLeast(Show(v), min);
        if (name == "weight_threshold" && v.IsNull())
          problem +=
              " (coremltools accepts null here, then refuses to compress: \"weight_threshold cannot be "
              "None\")";
        return Error(line, at, problem);
      }
      int64_t* field = name == "group_size"           ? &c->group_size
                       : name == "cluster_dim"        ? &c->cluster_dim
                       : name == "num_kmeans_workers" ? &c->num_kmeans_workers
                                                      : &c->weight_threshold;
      *field = i;
    } else if (name == "channel_axis") {
      if (v.IsNull()) {
        c->channel_axis.reset();
      } else if (AsInt(v, &i)) {
        c->channel_axis = i;
      } else {
        return Error(line, at, Show(v) + " is not an integer or null");
      }
    } else if (name == "enable_per_channel_scale") {
      bool b = false;
      if (!AsBool(v, &b)) return Error(line, at, Show(v) + " is not a bool (true or false)");
      c->enable_per_channel_scale = b;
    } else if (name == "lut_dtype") {
      if (v.IsNull()) {
        c->lut_dtype = LutDType::kFloat;
      } else if (!v.IsScalar() || !ParseLutDType(v.Scalar(), &c->lut_dtype).ok()) {
        return Error(line, at, Show(v) + " is not one of int8, uint8, null (null: the weight's own dtype)");
      }
    } else if (name == "lut_function") {
      return Error(LineOf(key), at,
                   "not supported (it is a Python function; use mode kmeans, uniform or unique)");
    } else if (name == "config_type") {
      // coremltools lets each entry name its own config class; only ours makes sense here.
      PALETTIZE_RETURN_IF_ERROR(CheckConfigType(key, v, at));
    } else {
      return Error(LineOf(key), at, std::string("unknown key (allowed: ") + allowed + ")");
    }
  }
  if (torch_) {
    if (!has_nbits && c->mode != PalettizeMode::kUnique) c->nbits = kTorchDefaultNbits;
    PALETTIZE_RETURN_IF_ERROR(CheckTorchConfig(pairs, owner_line, path, has_group_size, *c));
  }
  if (auto violation = FindViolation(*c)) {
    if (!violation->field.empty()) {
      for (const auto& [key, value] : pairs)
        if (key.Scalar() == violation->field)
          return Error(ValueLine(key, value), Join(path, violation->field), violation->problem);
    }
    return Error(owner_line, path, violation->problem);
  }
  return Status::OK();
}

Status ParseWithSchema(const std::string& text, const std::string& file, bool torch,
                       OptimizationConfig* out) {
  *out = OptimizationConfig();
  YamlTree doc;
  bool found = false;
  try {
    PALETTIZE_RETURN_IF_ERROR(doc.Load(text, file, &found));
  } catch (const YAML::Exception& e) {
    const int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
    return Status::InvalidArgument(file + ":" + std::to_string(line) + ": invalid YAML: " + OneLine(e.msg));
  }
  OptimizationConfig config;
  Parser parser(file, torch);
  try {
    if (found) PALETTIZE_RETURN_IF_ERROR(parser.ParseTop(doc.root(), &config));
  } catch (const YAML::Exception& e) {
    // Not expected (every access is type-checked first), but a throw must not escape the library.
    const int line = e.mark.line >= 0 ? e.mark.line + 1 : 1;
    return Status::InvalidArgument(file + ":" + std::to_string(line) + ": invalid YAML: " + OneLine(e.msg));
  }
  *out = std::move(config);
  return Status::OK();
}

Status ParseOptimizationConfig(const std::string& text, const std::string& file, OptimizationConfig* out) {
  return Guarded(file, [&] { return ParseWithSchema(text, file, false, out); });
}

}  // namespace palettize
