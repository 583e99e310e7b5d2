#include "compress/tables.h"

#include <cmath>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "MIL.pb.h"
#include "encode/bit_pack.h"
#include "mil/dtype.h"
#include "mil/tensor_data.h"
#include "package/tensor_reader.h"
#include "safetensors/safetensors.h"

namespace palettize {

namespace {

using MT = mil::DataType;

// One table of the file, as its metadata describes it (docs/format.md section 9).
struct Table {
  std::string name;
  std::vector<uint64_t> shape;
  int nbits = 0;
  int axis = 0;
  uint64_t group_size = 0;
  uint64_t cluster_dim = 1;
  bool scaled = false;
  bool int8 = false;  // lut_dtype "int8": X.lut holds integers, X.lut_scale one scale per table
  const SafeTensor* lut = nullptr;
  const SafeTensor* lut_scale = nullptr;
  const SafeTensor* indices = nullptr;
  const SafeTensor* scale = nullptr;
};

std::string Dims(const std::vector<uint64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

Status ParseTable(const SafeTensorsFile& f, const std::string& name, const std::string& json, Table* t) {
  const std::string where = f.path() + ": table '" + name + "': ";
  nlohmann::json m = nlohmann::json::parse(json, nullptr, false);
  if (!m.is_object()) return Status::InvalidArgument(where + "__metadata__ entry is not a JSON object");
  auto integer = [&](const char* key, int64_t lo, int64_t hi, int64_t* out) {
    if (!m.contains(key) || !m[key].is_number_integer() || m[key].get<int64_t>() < lo ||
        m[key].get<int64_t>() > hi)
      return Status::InvalidArgument(where + key + ": missing or not an integer in [" + std::to_string(lo) +
                                     ", " + std::to_string(hi) + "]");
    *out = m[key].get<int64_t>();
    return Status::OK();
  };
  int64_t nbits = 0, axis = 0, group = 0, dim = 0;
  PALETTIZE_RETURN_IF_ERROR(integer("nbits", 1, 8, &nbits));
  if (nbits == 5 || nbits == 7)
    return Status::InvalidArgument(where + "nbits: " + std::to_string(nbits) +
                                   " has no MIL index type (1, 2, 3, 4, 6, 8)");
  if (!m.contains("shape") || !m["shape"].is_array() || m["shape"].empty())
    return Status::InvalidArgument(where + "shape: missing or not a non-empty list");
  for (const auto& d : m["shape"]) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() == 0)
      return Status::InvalidArgument(where + "shape: not a list of positive integers");
    t->shape.push_back(d.get<uint64_t>());
  }
  PALETTIZE_RETURN_IF_ERROR(integer("channel_axis", 0, int64_t(t->shape.size()) - 1, &axis));
  const uint64_t channels = t->shape[size_t(axis)];
  PALETTIZE_RETURN_IF_ERROR(integer("group_size", 1, int64_t(channels), &group));
  PALETTIZE_RETURN_IF_ERROR(integer("cluster_dim", 1, int64_t(channels), &dim));
  if (channels % uint64_t(group) || uint64_t(group) % uint64_t(dim))
    return Status::InvalidArgument(where + "group_size " + std::to_string(group) + " and cluster_dim " +
                                   std::to_string(dim) + " do not divide the " + std::to_string(channels) +
                                   " channels");
  if (!m.contains("lut_dtype") || (m["lut_dtype"] != "float" && m["lut_dtype"] != "int8"))
    return Status::InvalidArgument(
        where + "lut_dtype: only \"float\" and \"int8\" tables can be written as they are");
  if (!m.contains("per_channel_scale") || !m["per_channel_scale"].is_boolean())
    return Status::InvalidArgument(where + "per_channel_scale: missing or not a bool");
  t->name = name;
  t->nbits = int(nbits);
  t->axis = int(axis);
  t->group_size = uint64_t(group);
  t->cluster_dim = uint64_t(dim);
  t->scaled = m["per_channel_scale"].get<bool>();
  t->int8 = m["lut_dtype"] == "int8";

  const uint64_t K = uint64_t(1) << nbits, T = channels / t->group_size;
  uint64_t elements = 1;
  for (uint64_t d : t->shape) elements *= d;
  std::vector<uint64_t> lut_shape(t->shape.size(), 1), scale_shape = t->shape;
  lut_shape[size_t(axis)] = T;
  lut_shape.push_back(K);
  lut_shape.push_back(t->cluster_dim);
  scale_shape[size_t(axis)] = 1;
  // `int_type`: the tensor must be that dtype (U8, I8); otherwise any float dtype.
  auto tensor = [&](const std::string& suffix, const std::vector<uint64_t>& shape,
                    std::optional<SafeDType> int_type, const SafeTensor** out) {
    const SafeTensor* x = f.Find(name + suffix);
    if (!x) return Status::InvalidArgument(where + "no tensor " + name + suffix);
    const bool float_type = x->dtype == SafeDType::kF16 || x->dtype == SafeDType::kBF16 ||
                            x->dtype == SafeDType::kF32 || x->dtype == SafeDType::kF64;
    if ((int_type ? x->dtype != *int_type : !float_type) || x->shape != shape)
      return Status::InvalidArgument(
          where + name + suffix + " is " + DescribeSafeTensor(*x) + ", expected " +
          (int_type ? (*int_type == SafeDType::kU8 ? "U8 " : "I8 ") : "a float tensor of shape ") +
          Dims(shape));
    *out = x;
    return Status::OK();
  };
  const std::optional<SafeDType> lut_type = t->int8 ? std::optional(SafeDType::kI8) : std::nullopt;
  PALETTIZE_RETURN_IF_ERROR(tensor(".lut", lut_shape, lut_type, &t->lut));
  if (t->int8) {
    std::vector<uint64_t> lut_scale_shape = lut_shape;
    lut_scale_shape[lut_shape.size() - 2] = lut_scale_shape[lut_shape.size() - 1] = 1;
    PALETTIZE_RETURN_IF_ERROR(tensor(".lut_scale", lut_scale_shape, std::nullopt, &t->lut_scale));
  }
  PALETTIZE_RETURN_IF_ERROR(
      tensor(".indices", {PackedSize(elements / t->cluster_dim, t->nbits)}, SafeDType::kU8, &t->indices));
  if (t->scaled) PALETTIZE_RETURN_IF_ERROR(tensor(".scale", scale_shape, std::nullopt, &t->scale));
  return Status::OK();
}

// The const names table `name` applies to (the header's rule).
std::vector<std::string> CandidateNames(const std::string& name) {
  std::string underscored = name;
  for (char& c : underscored)
    if (c == '.') c = '_';
  std::vector<std::string> out = {name};
  if (underscored != name) out.push_back(underscored);
  const size_t n = out.size();
  for (size_t i = 0; i < n; ++i) out.push_back(out[i] + "_to_fp16");
  return out;
}

bool SameBits(double a, double b) { return a == b && std::signbit(a) == std::signbit(b); }

// Builds the weight `t` encodes for const `w`, and checks it against w's values.
Status Preset(Package& package, const ConstWeight& w, const Table& t, const std::string& file,
              PalettizedWeight* p) {
  const std::string where = file + ": table '" + t.name + "' for const '" + w.name + "'";
  if (w.shape.dims != t.shape)
    return Status::InvalidArgument(where + ": the table is for shape " + Dims(t.shape) + ", the const has " +
                                   Dims(w.shape.dims));
  const int dtype = w.shape.mil_type;
  if (dtype != MT::FLOAT16 && dtype != MT::FLOAT32)
    return Status::InvalidArgument(where + ": the const is " + DTypeName(dtype) + ", not float16 or float32");
  const uint64_t D = t.cluster_dim, C = t.shape[size_t(t.axis)], K = uint64_t(1) << t.nbits;
  uint64_t outer = 1, inner = 1;
  for (size_t k = 0; k < t.shape.size(); ++k) {
    if (int(k) < t.axis) outer *= t.shape[k];
    if (int(k) > t.axis) inner *= t.shape[k];
  }
  p->nbits = t.nbits;
  p->cluster_dim = int(D);
  p->channel_axis = t.axis;
  p->tables = C / t.group_size;
  p->lut.resize(t.lut->elements);
  t.lut->Read(0, t.lut->elements, p->lut.data());
  // Entries as the const's dtype holds them: float ones rounded to it; int8 ones are kept as the
  // integers (constexpr_blockwise_shift_scale's data) and decode to round(lut_scale * q).
  std::vector<double> entries = p->lut;
  if (t.lut_scale) {
    p->lut_scale.resize(t.lut_scale->elements);
    t.lut_scale->Read(0, t.lut_scale->elements, p->lut_scale.data());
    for (double& s : p->lut_scale) s = RoundToDType(s, dtype);
    for (uint64_t e = 0; e < entries.size(); ++e)
      entries[e] = RoundToDType(p->lut_scale[e / (K * D)] * p->lut[e], dtype);
  } else {
    for (double& e : p->lut) e = RoundToDType(e, dtype);
    entries = p->lut;
  }
  const uint64_t n = w.shape.elements / D;
  p->indices.resize(n);
  for (uint64_t i = 0; i < n; ++i) p->indices[i] = UnpackBits(t.indices->data, i, t.nbits);
  p->indices_shape = t.shape;
  p->indices_shape[size_t(t.axis)] = C / D;
  if (t.scale) {
    p->channel_scale.resize(t.scale->elements);
    t.scale->Read(0, t.scale->elements, p->channel_scale.data());
    for (double& s : p->channel_scale) s = RoundToDType(s, dtype);
    p->scale_shape = t.scale->shape;
  }
  TensorData data;
  PALETTIZE_RETURN_IF_ERROR(ReadTensorData(package, w, &data));
  p->decoded.resize(w.shape.elements);
  p->signal = 0;
  for (uint64_t o = 0; o < outer; ++o)
    for (uint64_t c = 0; c < C; ++c)
      for (uint64_t i = 0; i < inner; ++i) {
        const uint64_t at = (o * C + c) * inner + i;
        const uint64_t idx = p->indices[(o * (C / D) + c / D) * inner + i];
        double e = entries[((c / t.group_size) * K + idx) * D + c % D];
        if (t.scale) e = RoundToDType(p->channel_scale[o * inner + i] * e, dtype);
        const double x = ElementAsDouble(data.data, dtype, at);
        if (!SameBits(e, x))
          return Status::InvalidArgument(where + ": element " + std::to_string(at) + " decodes to " +
                                         std::to_string(e) + ", the const holds " + std::to_string(x) +
                                         " (the tables are not the weights the model was converted from)");
        p->decoded[at] = e;
        p->signal += x * x;
      }
  p->sse = p->max_abs_error = p->weighted_sse = 0;
  p->snr_db = INFINITY;
  return Status::OK();
}

WeightPlan TablePlan(const Table& t) {
  WeightPlan plan;
  plan.palettize = plan.has_config = true;
  plan.config_source = "tables." + t.name;
  const uint64_t channels = t.shape[size_t(t.axis)];
  PalettizeConfig& c = plan.config;
  c.mode = PalettizeMode::kKMeans;
  c.nbits = t.nbits;
  c.granularity = t.group_size == channels ? Granularity::kPerTensor : Granularity::kPerGroupedChannel;
  c.group_size = int64_t(t.group_size);
  c.channel_axis = t.axis;
  c.cluster_dim = int64_t(t.cluster_dim);
  c.enable_per_channel_scale = t.scaled;
  c.lut_dtype = t.int8 ? LutDType::kInt8 : LutDType::kFloat;
  c.weight_threshold = 0;
  plan.channel_axis = t.axis;
  plan.group_size = t.group_size;
  plan.needs_ios18 = t.group_size != channels || t.cluster_dim > 1 || t.scaled || t.nbits == 3 || t.int8;
  return plan;
}

}  // namespace

Status PlanFromTables(Package& package, const std::vector<ConstWeight>& weights, const std::string& file,
                      std::vector<WeightPlan>* plans, std::vector<std::optional<PalettizedWeight>>* presets) {
  SafeTensorsFile f;
  PALETTIZE_RETURN_IF_ERROR(f.Open(file));
  std::vector<Table> tables;
  const std::string prefix = "palettize.";
  for (const auto& [key, value] : f.metadata()) {
    if (key.compare(0, prefix.size(), prefix) != 0 || key == "palettize.version") continue;
    tables.emplace_back();
    PALETTIZE_RETURN_IF_ERROR(ParseTable(f, key.substr(prefix.size()), value, &tables.back()));
  }
  if (tables.empty())
    return Status::InvalidArgument(file +
                                   ": no table (no __metadata__ entry palettize.X; write it with "
                                   "save_palettized or compress --packed)");
  std::map<std::string, std::vector<size_t>> by_name;
  for (size_t i = 0; i < weights.size(); ++i) by_name[weights[i].name].push_back(i);
  plans->assign(weights.size(), WeightPlan());
  presets->assign(weights.size(), std::nullopt);
  std::vector<const Table*> owner(weights.size(), nullptr);
  for (const Table& t : tables) {
    bool matched = false;
    for (const std::string& candidate : CandidateNames(t.name)) {
      auto found = by_name.find(candidate);
      if (found == by_name.end()) continue;
      for (size_t i : found->second) {
        if (owner[i])
          return Status::InvalidArgument(file + ": tables '" + owner[i]->name + "' and '" + t.name +
                                         "' both name const '" + weights[i].name + "'");
        owner[i] = &t;
        matched = true;
        PalettizedWeight p;
        PALETTIZE_RETURN_IF_ERROR(Preset(package, weights[i], t, file, &p));
        (*presets)[i] = std::move(p);
        (*plans)[i] = TablePlan(t);
      }
    }
    if (!matched) {
      std::string names;
      for (const std::string& c : CandidateNames(t.name)) names += (names.empty() ? "" : ", ") + c;
      return Status::InvalidArgument(file + ": table '" + t.name + "' matches no const (looked for " + names +
                                     ")");
    }
  }
  for (size_t i = 0; i < weights.size(); ++i)
    if (!owner[i]) (*plans)[i].reason = "no table in " + file;
  return Status::OK();
}

}  // namespace palettize
