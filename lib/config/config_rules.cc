// PalettizeConfig validation (the rules coremltools' validators state) and descriptions.
#include "config/config_rules.h"

namespace palettize {
namespace {

constexpr const char* kNbitsAllowed = "1, 2, 3, 4, 6, 8";

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

}  // namespace

bool ValidNbits(int64_t n) { return n == 1 || n == 2 || n == 3 || n == 4 || n == 6 || n == 8; }

std::string NotNbits(const std::string& shown) { return shown + " is not one of " + kNbitsAllowed; }
std::string NotIntAtLeast(const std::string& shown, int min) {
  return shown + " is not an integer >= " + std::to_string(min);
}

std::optional<Violation> FindViolation(const PalettizeConfig& c) {
  const bool needs_nbits = c.mode == PalettizeMode::kKMeans || c.mode == PalettizeMode::kUniform;
  if (needs_nbits && c.nbits == 0)
    return Violation{"", std::string("nbits is required for ") + ModeName(c.mode) + " mode (one of " +
                             kNbitsAllowed + ")"};
  if (!needs_nbits && c.nbits != 0)
    return Violation{"nbits",
                     "must not be set for unique mode (it uses the fewest bits that hold "
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
