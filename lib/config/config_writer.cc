#include "config/config_writer.h"

#include <cstdio>

namespace palettize {

namespace {

// The code point of the valid UTF-8 sequence at s[i] and its length, or length 0 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
size_t DecodeUtf8(const std::string& s, size_t i, uint32_t* cp) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  size_t n;
  uint32_t min;
  if ((b & 0xE0) == 0xC0) {
    n = 2, min = 0x80, *cp = b & 0x1F;
  } else if ((b & 0xF0) == 0xE0) {
    n = 3, min = 0x800, *cp = b & 0x0F;
  } else if ((b & 0xF8) == 0xF0) {
    n = 4, min = 0x10000, *cp = b & 0x07;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    *cp = (*cp << 6) | (byte(i + k) & 0x3F);
  }
  if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF)) return 0;
  return n;
}

// Characters a YAML reader may not take as written inside a double-quoted scalar: the quote and
// backslash, control characters, and what PyYAML refuses as non-printable (C1 controls, U+FFFE,
// U+FFFF) or reads as a line break (NEL, U+2028, U+2029), plus the byte order mark.
bool NeedsEscape(uint32_t cp) {
  return cp < 0x20 || cp == '"' || cp == '\\' || (cp >= 0x7F && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF;
}

// `name` as a double-quoted YAML scalar: both yaml-cpp and PyYAML read back the same bytes.
Status Quoted(const std::string& name, const std::string& where, std::string* out) {
  std::string q = "\"";
  for (size_t i = 0, n; i < name.size(); i += n) {
    uint32_t cp = 0;
    n = DecodeUtf8(name, i, &cp);
    if (n == 0)
      return Status::InvalidArgument(where + ": name '" + name +
                                     "' is not valid UTF-8 and cannot be written in YAML");
    if (!NeedsEscape(cp)) {
      q.append(name, i, n);
      continue;
    }
    char esc[12];
    if (cp == '"' || cp == '\\')
      std::snprintf(esc, sizeof esc, "\\%c", char(cp));
    else if (cp < 0x100)
      std::snprintf(esc, sizeof esc, "\\x%02X", unsigned(cp));
    else
      std::snprintf(esc, sizeof esc, "\\u%04X", unsigned(cp));
    q += esc;
  }
  *out = q + "\"";
  return Status::OK();
}

const char* LutName(LutDType t) {
  return t == LutDType::kInt8 ? "int8" : t == LutDType::kUInt8 ? "uint8" : "";
}

const char* GranularityName(Granularity g) {
  return g == Granularity::kPerTensor ? "per_tensor" : "per_grouped_channel";
}

// The body of one config (or " null"), each field on its own line at `indent`.
Status ConfigBody(const std::optional<PalettizeConfig>& config, ConfigSchema schema, const std::string& where,
                  const std::string& indent, std::string* out) {
  if (!config) {
    *out += " null\n";
    return Status::OK();
  }
  const PalettizeConfig& c = *config;
  PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(c, where));
  const bool torch = schema == ConfigSchema::kTorch;
  if (torch && c.channel_axis && *c.channel_axis != 0 && *c.channel_axis != 1)
    return Status::InvalidArgument(where + ": channel_axis: " + std::to_string(*c.channel_axis) +
                                   " is not one of 0, 1, null (Torch schema)");
  if (torch && c.cluster_dim > 1 && c.enable_per_channel_scale)
    return Status::InvalidArgument(where + ": cluster_dim: " + std::to_string(c.cluster_dim) +
                                   " is not allowed with enable_per_channel_scale (Torch schema)");
  *out += "\n";
  auto field = [&](const char* key, const std::string& value) { *out += indent + key + ": " + value + "\n"; };
  auto bool_text = [](bool b) { return std::string(b ? "true" : "false"); };
  const std::string axis = c.channel_axis ? std::to_string(*c.channel_axis) : "null";
  if (!torch) {
    field("mode", ModeName(c.mode));
    if (c.nbits != 0) field("nbits", std::to_string(c.nbits));
    field("granularity", GranularityName(c.granularity));
    field("group_size", std::to_string(c.group_size));
    field("channel_axis", axis);
    field("cluster_dim", std::to_string(c.cluster_dim));
    field("enable_per_channel_scale", bool_text(c.enable_per_channel_scale));
    field("num_kmeans_workers", std::to_string(c.num_kmeans_workers));
    field("weight_threshold", std::to_string(c.weight_threshold));
    if (c.lut_dtype != LutDType::kFloat) field("lut_dtype", LutName(c.lut_dtype));
    return Status::OK();
  }
  // The Torch schema refuses group_size with per_tensor and requires it with per_grouped_channel;
  // unique mode has no n_bits (its default, 4, would be read back otherwise).
  if (c.mode != PalettizeMode::kKMeans) field("mode", ModeName(c.mode));
  if (c.nbits != 0) field("n_bits", std::to_string(c.nbits));
  field("granularity", GranularityName(c.granularity));
  if (c.granularity == Granularity::kPerGroupedChannel) field("group_size", std::to_string(c.group_size));
  if (c.channel_axis) field("channel_axis", axis);
  if (c.cluster_dim != 1) field("cluster_dim", std::to_string(c.cluster_dim));
  if (c.enable_per_channel_scale) field("enable_per_channel_scale", "true");
  if (c.lut_dtype != LutDType::kFloat) field("lut_dtype", LutName(c.lut_dtype));
  if (c.weight_threshold != PalettizeConfig().weight_threshold)
    field("weight_threshold", std::to_string(c.weight_threshold));
  return Status::OK();
}

Status Table(const std::map<std::string, std::optional<PalettizeConfig>>& table, const char* key,
             ConfigSchema schema, std::string* out) {
  if (table.empty()) {
    *out += std::string(key) + ": {}\n";
    return Status::OK();
  }
  *out += std::string(key) + ":\n";
  for (const auto& [name, config] : table) {
    std::string quoted;
    PALETTIZE_RETURN_IF_ERROR(Quoted(name, key, &quoted));
    *out += "  " + quoted + ":";
    PALETTIZE_RETURN_IF_ERROR(ConfigBody(config, schema, std::string(key) + "." + name, "    ", out));
  }
  return Status::OK();
}

}  // namespace

Status ConfigYaml(const OptimizationConfig& config, ConfigSchema schema, const std::string& comment,
                  std::string* yaml) {
  const bool torch = schema == ConfigSchema::kTorch;
  std::string out;
  for (size_t begin = 0; begin < comment.size();) {
    size_t end = comment.find('\n', begin);
    if (end == std::string::npos) end = comment.size();
    out += "# " + comment.substr(begin, end - begin) + "\n";
    begin = end + 1;
  }
  if (!torch) out += "config_type: OpPalettizerConfig\n";
  out += "global_config:";
  PALETTIZE_RETURN_IF_ERROR(ConfigBody(config.global_config, schema, "global_config", "  ", &out));
  PALETTIZE_RETURN_IF_ERROR(
      Table(config.op_type_configs, torch ? "module_type_configs" : "op_type_configs", schema, &out));
  PALETTIZE_RETURN_IF_ERROR(
      Table(config.op_name_configs, torch ? "module_name_configs" : "op_name_configs", schema, &out));
  *yaml = std::move(out);
  return Status::OK();
}

}  // namespace palettize
