// OptimizationConfig from YAML, with coremltools' OptimizationConfig.from_yaml semantics made
// strict: coremltools goes through PyYAML + cattrs, which silently coerce "6" or 6.5 to an int and
// let the last of two duplicate keys win; here each of those is an error naming its line.
#include "palettize/config.h"

#include <yaml-cpp/exceptions.h>

#include <cctype>
#include <cstdio>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/yaml_tree.h"
#include "palettize/option_names.h"
#include "palettize/overrides.h"
#include "util/guard.h"

namespace palettize {
namespace {

using Node = YamlTree::Node;

constexpr const char* kNbitsAllowed = "1, 2, 3, 4, 6, 8";
constexpr const char* kTopKeys = "config_type, global_config, op_type_configs, op_name_configs";
constexpr const char* kConfigKeys =
    "mode, nbits, granularity, group_size, channel_axis, cluster_dim, enable_per_channel_scale, "
    "num_kmeans_workers, weight_threshold, lut_dtype";
constexpr const char* kConfigType = "OpPalettizerConfig";
// coremltools.optimize.torch's PostTrainingPalettizerConfig / SKMPalettizerConfig, for checkpoints.
constexpr const char* kTorchTopKeys = "global_config, module_type_configs, module_name_configs";
constexpr const char* kTorchConfigKeys =
    "n_bits (or nbits), granularity, group_size, channel_axis, cluster_dim, enable_per_channel_scale, "
    "lut_dtype, weight_threshold, mode";
constexpr const char* kTorchModuleTypes = "Linear, Conv1d, Conv2d, Embedding";
constexpr int kTorchDefaultNbits = 4;  // ModulePostTrainingPalettizerConfig's n_bits default

bool ValidNbits(int64_t n) { return n == 1 || n == 2 || n == 3 || n == 4 || n == 6 || n == 8; }

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}


// Shared wording, so that a YAML file and a CLI flag with the same bad value read the same.
std::string NotNbits(const std::string& shown) { return shown + " is not one of " + kNbitsAllowed; }
std::string NotIntAtLeast(const std::string& shown, int min) {
  return shown + " is not an integer >= " + std::to_string(min);
}

// The first rule a config breaks. `field` is the key the problem is about, or empty when it is
// about the config as a whole (a missing nbits has no node to point at).
struct Violation {
  std::string field;
  std::string problem;
};

// Order follows coremltools' validators, so the first complaint matches theirs.
std::optional<Violation> FindViolation(const PalettizeConfig& c) {
  const bool needs_nbits = c.mode == PalettizeMode::kKMeans || c.mode == PalettizeMode::kUniform;
  if (needs_nbits && c.nbits == 0)
    return Violation{"", std::string("nbits is required for ") + ModeName(c.mode) + " mode (one of " +
                             kNbitsAllowed + ")"};
  if (!needs_nbits && c.nbits != 0)
    return Violation{"nbits", "must not be set for unique mode (it uses the fewest bits that hold "
                              "the weight's distinct values)"};
  if (c.nbits != 0 && !ValidNbits(c.nbits)) return Violation{"nbits", NotNbits(std::to_string(c.nbits))};
  if (c.group_size < 1) return Violation{"group_size", NotIntAtLeast(std::to_string(c.group_size), 1)};
  if (c.cluster_dim < 1) return Violation{"cluster_dim", NotIntAtLeast(std::to_string(c.cluster_dim), 1)};
  if (c.mode == PalettizeMode::kUniform && c.cluster_dim > 1)
    return Violation{"cluster_dim", std::to_string(c.cluster_dim) +
                                        " is not allowed with uniform mode (vector palettization, "
                                        "cluster_dim > 1, needs kmeans or unique)"};
  if (c.num_kmeans_workers < 1)
    return Violation{"num_kmeans_workers", NotIntAtLeast(std::to_string(c.num_kmeans_workers), 1)};
  if (c.weight_threshold < 0)
    return Violation{"weight_threshold", NotIntAtLeast(std::to_string(c.weight_threshold), 0)};
  return std::nullopt;
}

// True when `where` already ends with the field's name, as a key path ("a.nbits") or a flag
// ("--group-size"), so repeating it would read "--nbits: nbits: ...".
bool NamesField(const std::string& where, const std::string& field) {
  std::string dashed = field;
  for (char& c : dashed)
    if (c == '_') c = '-';
  for (const std::string& name : {field, dashed}) {
    if (where.size() < name.size() || where.compare(where.size() - name.size(), name.size(), name) != 0)
      continue;
    if (where.size() == name.size()) return true;
    const char before = where[where.size() - name.size() - 1];
    if (before == '.' || before == '-' || before == ' ' || before == ':') return true;
  }
  return false;
}

// Errors are one line each: user text (values, op names) may hold newlines or control bytes.
std::string OneLine(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int LineOf(const Node& n) { return n.Mark().line >= 0 ? n.Mark().line + 1 : 1; }

// Where a value's error points: an implicit null's mark is the next token (often the next line),
// and a block collection's mark is its first child, so both point at their key instead.
int ValueLine(const Node& key, const Node& value) {
  return value.IsScalar() ? LineOf(value) : LineOf(key);
}

// yaml-cpp keeps a plain scalar's tag as "?" and a quoted one's as "!"; only a plain (or
// explicitly !!int / !!bool tagged) scalar may be read as a number or bool, as in PyYAML.
bool IsPlain(const Node& n, const char* explicit_tag) {
  return n.IsScalar() && (n.Tag() == "?" || n.Tag() == explicit_tag);
}

// Decimal only: PyYAML (YAML 1.1) reads 010 as octal 8 and 0x10 as 16; refusing those avoids
// disagreeing with coremltools about what a file means.
bool AsInt(const Node& n, int64_t* out) {
  if (!IsPlain(n, "tag:yaml.org,2002:int")) return false;
  const std::string& s = n.Scalar();
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  if (s[i] == '0' && s.size() > i + 1) return false;
  uint64_t v = 0;
  for (size_t j = i; j < s.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
    v = v * 10 + uint64_t(s[j] - '0');
    if (v > uint64_t(INT64_MAX)) return false;
  }
  *out = s[0] == '-' ? -int64_t(v) : int64_t(v);
  return true;
}

// PyYAML's YAML 1.1 booleans, which is what coremltools' from_yaml accepts.
bool AsBool(const Node& n, bool* out) {
  if (!IsPlain(n, "tag:yaml.org,2002:bool")) return false;
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (const char* t : kTrue) {
    if (n.Scalar() == t) {
      *out = true;
      return true;
    }
  }
  for (const char* f : kFalse) {
    if (n.Scalar() == f) {
      *out = false;
      return true;
    }
  }
  return false;
}

// How an error shows a value: as written, quoted if it was quoted (so `"6"` explains itself).
std::string Show(const Node& n) {
  if (n.IsNull()) return "null";
  if (n.IsSequence()) return "a sequence";
  if (n.IsMap()) return "a mapping";
  std::string s = n.Scalar();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  s = OneLine(s);
  return n.Tag() == "!" ? "\"" + s + "\"" : s;
}

// A mapping's pairs in file order, duplicates included.
std::vector<std::pair<Node, Node>> Pairs(const Node& map) { return map.Pairs(); }

class Parser {
 public:
  Parser(const std::string& file, bool torch) : file_(file), torch_(torch) {}

  Status Error(int line, const std::string& path, const std::string& problem) const {
    std::string msg = file_ + ":" + std::to_string(line) + ": ";
    if (!path.empty()) msg += OneLine(path) + ": ";
    return Status::InvalidArgument(msg + problem);
  }

  Status ParseTop(const Node& root, OptimizationConfig* out) {
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

 private:
  // One top-level key of the Torch schema; module_type_configs and module_name_configs land in
  // op_type_configs and op_name_configs.
  Status ParseTorchTop(const Node& key, const Node& value, OptimizationConfig* out) {
    const std::string name = key.Scalar();
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
                   "with " + GetOptionNames().sensitivity + ")");
    return Error(LineOf(key), name, std::string("unknown key (allowed: ") + kTorchTopKeys + ")");
  }

  // The Torch schema's rules beyond the shared ones, as coremltools' validators state them.
  Status CheckTorchConfig(const std::vector<std::pair<Node, Node>>& pairs, int owner_line,
                          const std::string& path, bool has_group_size, const PalettizeConfig& c) const {
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

  // yaml-cpp keeps every pair of a mapping (lookups see the first); PyYAML keeps the last.
  // Rather than pick one, a repeated key is an error.
  Status CheckKeys(const Node& map, const std::string& path) const {
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

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  // Python's getattr on the module is case-sensitive, so this is too.
  Status CheckConfigType(const Node& key, const Node& value, const std::string& path) const {
    if (value.IsScalar() && value.Scalar() == kConfigType) return Status::OK();
    return Error(ValueLine(key, value), path,
                 Show(value) + " is not supported (only " + kConfigType +
                     "; palettize does not quantize or prune)");
  }

  Status ParseTable(const Node& key, const Node& value, const std::string& path,
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

  Status ParseOptional(const Node& key, const Node& value, const std::string& path,
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

  Status ParseConfig(const Node& map, int owner_line, const std::string& path, PalettizeConfig* c) {
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
          if (lower == "custom") return Error(line, at, "custom mode needs a Python lut_function and is not supported");
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
            return Error(line, at,
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
            problem += " (coremltools accepts null here, then refuses to compress: \"weight_threshold cannot be None\")";
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
        return Error(LineOf(key), at, "not supported (it is a Python function; use mode kmeans, uniform or unique)");
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

  std::string file_;
  bool torch_ = false;  // coremltools.optimize.torch's schema (checkpoints), else OptimizationConfig's
};

Status ParseWithSchema(const std::string& text, const std::string& file, bool torch, OptimizationConfig* out) {
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

}  // namespace


Status ParseOptimizationConfig(const std::string& text, const std::string& file, OptimizationConfig* out) {
  return Guarded(file, [&] { return ParseWithSchema(text, file, false, out); });
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

Status ValidatePalettizeConfig(const PalettizeConfig& config, const std::string& where) {
  const std::optional<Violation> v = FindViolation(config);
  if (!v) return Status::OK();
  std::string head = where;
  if (!v->field.empty() && !NamesField(where, v->field)) head += ": " + v->field;
  return Status::InvalidArgument(head + ": " + v->problem);
}

std::string DescribeConfig(const PalettizeConfig& config) {
  std::string s = ModeName(config.mode);
  if (config.nbits != 0) s += " " + std::to_string(config.nbits) + "-bit";
  if (config.granularity == Granularity::kPerTensor) {
    s += " per_tensor";
  } else {
    s += " per_grouped_channel(group_size=" + std::to_string(config.group_size);
    if (config.channel_axis) s += ", axis=" + std::to_string(*config.channel_axis);
    s += ")";
  }
  if (config.cluster_dim != 1) s += " cluster_dim=" + std::to_string(config.cluster_dim);
  if (config.enable_per_channel_scale) s += " per_channel_scale";
  if (config.lut_dtype == LutDType::kInt8) s += " lut=int8";
  if (config.lut_dtype == LutDType::kUInt8) s += " lut=uint8";
  return s;
}

const char* ModeName(PalettizeMode m) {
  switch (m) {
    case PalettizeMode::kKMeans: return "kmeans";
    case PalettizeMode::kUniform: return "uniform";
    case PalettizeMode::kUnique: return "unique";
  }
  return "?";
}

}  // namespace palettize
