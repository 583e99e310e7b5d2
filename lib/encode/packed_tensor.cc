// The --packed layout: packed_tensor.h.
#include "encode/packed_tensor.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "encode/bit_pack.h"
#include "util/half.h"

namespace palettize {

namespace {

template <typename T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  out->append(b, sizeof(T));
}

// [g_0 .. g_{r-1}] with the table count on the channel axis.
std::vector<uint64_t> TableDims(const TensorShape& shape, const PalettizedWeight& p) {
  std::vector<uint64_t> g(shape.dims.size(), 1);
  g[size_t(p.channel_axis)] = p.tables;
  return g;
}

const char* LutDTypeText(LutDType t) {
  return t == LutDType::kInt8 ? "int8" : t == LutDType::kUInt8 ? "uint8" : "float";
}

}  // namespace

void EncodeFloats(SafeDType dtype, const double* v, uint64_t n, std::string* out) {
  out->reserve(out->size() + n * SafeDTypeSize(dtype));
  for (uint64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case SafeDType::kF16: Put(out, DoubleToHalfBits(v[i])); break;
      case SafeDType::kBF16: Put(out, DoubleToBFloat16Bits(v[i])); break;
      case SafeDType::kF32: Put(out, float(v[i])); break;
      default: Put(out, v[i]); break;
    }
  }
}

uint64_t PackedTensorBytes(SafeDType dtype, const TensorShape& shape, const WeightPlan& plan,
                           const PalettizedWeight& p) {
  const LutDType lut = plan.config.lut_dtype;
  uint64_t bytes = p.lut.size() * (lut == LutDType::kFloat ? SafeDTypeSize(dtype) : 1);
  if (lut != LutDType::kFloat) bytes += p.tables * SafeDTypeSize(dtype);
  if (lut == LutDType::kUInt8) bytes += p.tables;
  bytes += PackedSize(shape.elements / uint64_t(p.cluster_dim), p.nbits);
  return bytes + p.channel_scale.size() * SafeDTypeSize(dtype);
}

void PackTensor(const std::string& name, SafeDType dtype, const TensorShape& shape, const WeightPlan& plan,
                const PalettizedWeight& p, std::vector<StoredTensor>* out, std::string* metadata) {
  const LutDType lut = plan.config.lut_dtype;
  const std::vector<uint64_t> g = TableDims(shape, p);
  StoredTensor t;
  t.spec = {name + ".lut",
            lut == LutDType::kInt8    ? SafeDType::kI8
            : lut == LutDType::kUInt8 ? SafeDType::kU8
                                      : dtype,
            g};
  t.spec.shape.push_back(uint64_t(1) << p.nbits);
  t.spec.shape.push_back(uint64_t(p.cluster_dim));
  if (lut == LutDType::kFloat) {
    EncodeFloats(dtype, p.lut.data(), p.lut.size(), &t.data);
  } else {
    for (double q : p.lut) t.data.push_back(lut == LutDType::kInt8 ? char(int8_t(q)) : char(uint8_t(q)));
  }
  out->push_back(std::move(t));
  std::vector<uint64_t> per_table = g;
  per_table.push_back(1);
  per_table.push_back(1);
  if (lut != LutDType::kFloat) {
    StoredTensor s{{name + ".lut_scale", dtype, per_table}, {}};
    EncodeFloats(dtype, p.lut_scale.data(), p.lut_scale.size(), &s.data);
    out->push_back(std::move(s));
  }
  if (lut == LutDType::kUInt8) {
    StoredTensor o{{name + ".lut_offset", SafeDType::kU8, per_table}, {}};
    for (double v : p.lut_offset) o.data.push_back(char(uint8_t(v)));
    out->push_back(std::move(o));
  }
  const uint64_t n = p.indices.size();
  StoredTensor idx{{name + ".indices", SafeDType::kU8, {PackedSize(n, p.nbits)}}, {}};
  idx.data.resize(PackedSize(n, p.nbits));
  PackBits(p.indices.data(), n, p.nbits, reinterpret_cast<uint8_t*>(idx.data.data()));
  out->push_back(std::move(idx));
  if (!p.channel_scale.empty()) {
    StoredTensor s{{name + ".scale", dtype, p.scale_shape}, {}};
    EncodeFloats(dtype, p.channel_scale.data(), p.channel_scale.size(), &s.data);
    out->push_back(std::move(s));
  }
  const nlohmann::ordered_json m = {{"dtype", SafeDTypeName(dtype)},
                                    {"shape", shape.dims},
                                    {"nbits", p.nbits},
                                    {"channel_axis", p.channel_axis},
                                    {"group_size", plan.group_size},
                                    {"cluster_dim", p.cluster_dim},
                                    {"lut_dtype", LutDTypeText(lut)},
                                    {"per_channel_scale", !p.channel_scale.empty()}};
  *metadata = m.dump();
}

}  // namespace palettize
