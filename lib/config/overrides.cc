// Config overrides and the parsing of option names (palettize/overrides.h).
#include "palettize/overrides.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <utility>

namespace palettize {
namespace {

template <typename T>
using Names = std::initializer_list<std::pair<const char*, T>>;

// Looks `text` up in `names` ignoring case; the error lists the names in their order.
template <typename T>
Status ParseName(const std::string& text, Names<T> names, T* out) {
  std::string choices;
  for (const auto& [name, value] : names) {
    const std::string n = name;
    bool same = n.size() == text.size();
    for (size_t i = 0; same && i < n.size(); ++i)
      same =
          std::tolower(static_cast<unsigned char>(text[i])) == std::tolower(static_cast<unsigned char>(n[i]));
    if (same) {
      *out = value;
      return Status::OK();
    }
    choices += (choices.empty() ? "" : ", ") + n;
  }
  return Status::InvalidArgument("'" + text + "' is not one of " + choices);
}

PalettizeConfig DefaultPalettizeConfig() {
  PalettizeConfig c;
  c.nbits = 6;
  return c;
}

}  // namespace

bool ConfigOverrides::empty() const {
  return !mode && !nbits && !granularity && !group_size && !channel_axis && !cluster_dim &&
         !enable_per_channel_scale && !lut_dtype && !weight_threshold;
}

OptimizationConfig DefaultOptimizationConfig() {
  OptimizationConfig c;
  c.global_config = DefaultPalettizeConfig();
  return c;
}

Status ApplyOverrides(const ConfigOverrides& o, OptimizationConfig* config) {
  if (o.empty()) return Status::OK();
  if (!config->global_config) config->global_config = DefaultPalettizeConfig();
  PalettizeConfig& g = *config->global_config;
  if (o.mode) {
    g.mode = *o.mode;
    if (g.mode == PalettizeMode::kUnique && !o.nbits) g.nbits = 0;
    if (g.mode != PalettizeMode::kUnique && g.nbits == 0) g.nbits = DefaultPalettizeConfig().nbits;
  }
  if (o.nbits) g.nbits = *o.nbits;
  if (o.granularity) g.granularity = *o.granularity;
  if (o.group_size) g.group_size = *o.group_size;
  if (o.channel_axis) g.channel_axis = *o.channel_axis;
  if (o.cluster_dim) g.cluster_dim = *o.cluster_dim;
  if (o.enable_per_channel_scale) g.enable_per_channel_scale = *o.enable_per_channel_scale;
  if (o.lut_dtype) g.lut_dtype = *o.lut_dtype;
  if (o.weight_threshold) g.weight_threshold = *o.weight_threshold;
  return ValidatePalettizeConfig(g, "options");
}

Status ResolveConfig(const std::string& config_file, bool torch_schema, const ConfigOverrides& overrides,
                     OptimizationConfig* out) {
  if (config_file.empty()) {
    *out = DefaultOptimizationConfig();
  } else {
    PALETTIZE_RETURN_IF_ERROR(ReadConfigFile(config_file, torch_schema, out));
  }
  return ApplyOverrides(overrides, out);
}

Status ParseMode(const std::string& text, PalettizeMode* out) {
  return ParseName<PalettizeMode>(text,
                                  {{"kmeans", PalettizeMode::kKMeans},
                                   {"uniform", PalettizeMode::kUniform},
                                   {"unique", PalettizeMode::kUnique}},
                                  out);
}

Status ParseGranularity(const std::string& text, Granularity* out) {
  return ParseName<Granularity>(
      text,
      {{"per_tensor", Granularity::kPerTensor}, {"per_grouped_channel", Granularity::kPerGroupedChannel}},
      out);
}

Status ParseLutDType(const std::string& text, LutDType* out) {
  return ParseName<LutDType>(text, {{"int8", LutDType::kInt8}, {"uint8", LutDType::kUInt8}}, out);
}

Status ParseDeploymentTarget(const std::string& text, DeploymentTarget* out) {
  return ParseName<DeploymentTarget>(text,
                                     {{"iOS16", DeploymentTarget::kIOS16},
                                      {"iOS17", DeploymentTarget::kIOS17},
                                      {"iOS18", DeploymentTarget::kIOS18}},
                                     out);
}

Status ParseByteSize(const std::string& text, double* out) {
  const Status bad = Status::InvalidArgument(
      "'" + text + "' is not a size in bytes (a number with an optional K, M, G or T)");
  size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  if (end == 0 || std::count(text.begin(), text.begin() + long(end), '.') > 1 || text[0] == '.') return bad;
  std::string unit = text.substr(end);
  for (char& c : unit) c = char(std::toupper(static_cast<unsigned char>(c)));
  if ((unit.size() == 3 && unit.compare(1, 2, "IB") == 0) || (unit.size() == 2 && unit[1] == 'B'))
    unit.resize(1);  // "KiB", "KB" -> "K"
  static const std::string kUnits = "KMGT";
  double scale = 1;
  if (unit == "B" || unit.empty()) {
    scale = 1;
  } else if (unit.size() == 1 && kUnits.find(unit[0]) != std::string::npos) {
    for (size_t i = 0; i <= kUnits.find(unit[0]); ++i) scale *= 1024;
  } else {
    return bad;
  }
  const double value = std::strtod(text.substr(0, end).c_str(), nullptr) * scale;
  if (!std::isfinite(value) || value < 1 || value != std::floor(value)) return bad;
  *out = value;
  return Status::OK();
}

}  // namespace palettize
