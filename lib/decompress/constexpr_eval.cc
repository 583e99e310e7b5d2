#include "decompress/constexpr_eval.h"

#include "MIL.pb.h"
#include "compress/weight_palettizer.h"
#include "encode/bit_pack.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"

namespace palettize {

namespace {

// Row-major strides of `dims`.
std::vector<uint64_t> Strides(const std::vector<uint64_t>& dims) {
  std::vector<uint64_t> s(dims.size(), 1);
  for (size_t i = dims.size(); i-- > 1;) s[i - 1] = s[i] * dims[i];
  return s;
}

}  // namespace

bool IsDecompressible(const mil::Operation& op) {
  return op.type() == "constexpr_lut_to_dense" || op.type() == "constexpr_blockwise_shift_scale";
}

void IndexProducers(mil::Block& b, std::map<std::string, mil::Operation*>* producers,
                    std::set<std::string>* chain_inputs) {
  for (mil::Operation& op : *b.mutable_operations()) {
    for (const auto& o : op.outputs()) (*producers)[o.name()] = &op;
    if (IsDecompressible(op))
      for (const auto& [in, arg] : op.inputs())
        for (const auto& binding : arg.arguments())
          if (binding.binding_case() == mil::Argument::Binding::kName) chain_inputs->insert(binding.name());
    for (mil::Block& nested : *op.mutable_blocks()) IndexProducers(nested, producers, chain_inputs);
  }
}

Status ConstexprEvaluator::EvalOp(const mil::Operation& op, DenseTensor* out) {
  const std::string where = op.type() + " '" + OpName(op) + "'";
  if (op.type() == "constexpr_lut_to_dense") return LutToDense(op, where, out);
  if (op.type() == "constexpr_blockwise_shift_scale") return ShiftScale(op, where, out);
  return Status::InvalidInput(package_.model_path() + ": " + where + ": cannot be decompressed");
}

Status ConstexprEvaluator::Param(const mil::Operation& op, const std::string& name, const std::string& where,
                                 DenseTensor* out, bool* present) {
  if (present) *present = true;
  const mil::Value* value = nullptr;
  if (auto a = op.attributes().find(name); a != op.attributes().end()) value = &a->second;
  if (auto in = op.inputs().find(name); value == nullptr && in != op.inputs().end()) {
    if (in->second.arguments_size() != 1)
      return Status::InvalidInput(package_.model_path() + ": " + where + ": input '" + name + "' is not one argument");
    const auto& b = in->second.arguments(0);
    if (b.binding_case() == mil::Argument::Binding::kName) {
      auto p = producers_.find(b.name());
      if (p == producers_.end())
        return Status::InvalidInput(package_.model_path() + ": " + where + ": input '" + name + "' names '" +
                                    b.name() + "', which is not a constant");
      if (p->second->type() == "const") {
        const mil::Value& v = p->second->attributes().at("val");
        return Read(v, p->second->outputs(0).type(), where + ": " + name, out);
      }
      return EvalOp(*p->second, out);
    }
    value = &b.value();
  }
  if (value == nullptr) {
    if (present) {
      *present = false;
      return Status::OK();
    }
    return Status::InvalidInput(package_.model_path() + ": " + where + ": missing '" + name + "'");
  }
  return Read(*value, value->type(), where + ": " + name, out);
}

Status ConstexprEvaluator::Read(const mil::Value& v, const mil::ValueType& type, const std::string& what, DenseTensor* out) {
  PALETTIZE_RETURN_IF_ERROR(ParseTensorType(type, &out->shape).WithContext(package_.model_path() + ": " + what));
  TensorData data;
  PALETTIZE_RETURN_IF_ERROR(ReadValueData(package_, v, out->shape, what, &data));
  out->v.resize(out->shape.elements);
  for (uint64_t i = 0; i < out->shape.elements; ++i) out->v[i] = ElementAsDouble(data.data, out->shape.mil_type, i);
  return Status::OK();
}

Status ConstexprEvaluator::Fail(const std::string& where, const std::string& msg) {
  return Status::InvalidInput(package_.model_path() + ": " + where + ": " + msg);
}

Status ConstexprEvaluator::LutToDense(const mil::Operation& op, const std::string& where, DenseTensor* out) {
  DenseTensor indices, lut;
  PALETTIZE_RETURN_IF_ERROR(Param(op, "indices", where, &indices));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "lut", where, &lut));
  if (op.attributes().count("shape")) {  // iOS16: packed uint8 indices, one table
    DenseTensor shape;
    PALETTIZE_RETURN_IF_ERROR(Param(op, "shape", where, &shape));
    const uint64_t K = lut.shape.elements;
    int nbits = 0;
    while ((uint64_t(1) << nbits) < K) ++nbits;
    if (K < 2 || (uint64_t(1) << nbits) != K || nbits > 8) return Fail(where, "lut size " + std::to_string(K) + " is not 2^nbits");
    out->shape.mil_type = lut.shape.mil_type;
    out->shape.bits = lut.shape.bits;
    out->shape.elements = 1;
    for (double d : shape.v) {
      out->shape.dims.push_back(uint64_t(d));
      out->shape.elements *= uint64_t(d);
    }
    if (PackedSize(out->shape.elements, nbits) > indices.shape.elements)
      return Fail(where, "indices hold fewer than " + std::to_string(out->shape.elements) + " elements");
    std::vector<uint8_t> bytes(indices.v.begin(), indices.v.end());
    out->v.resize(out->shape.elements);
    for (uint64_t i = 0; i < out->shape.elements; ++i) out->v[i] = lut.v[UnpackBits(bytes.data(), i, nbits)];
    return Status::OK();
  }
  const size_t rank = indices.shape.dims.size();
  if (lut.shape.dims.size() != rank + 2) return Fail(where, "lut rank is not indices rank + 2");
  const uint64_t K = lut.shape.dims[rank], D = lut.shape.dims[rank + 1];
  int64_t axis = 0;
  if (D > 1) {
    DenseTensor va;
    PALETTIZE_RETURN_IF_ERROR(Param(op, "vector_axis", where, &va));
    axis = int64_t(va.v.at(0));
    if (axis < 0) axis += int64_t(rank);
    if (axis < 0 || axis >= int64_t(rank)) return Fail(where, "vector_axis out of range");
  }
  std::vector<uint64_t> block(rank);
  for (size_t k = 0; k < rank; ++k) {
    if (lut.shape.dims[k] == 0 || indices.shape.dims[k] % lut.shape.dims[k] != 0)
      return Fail(where, "lut dimension " + std::to_string(k) + " does not divide the indices'");
    block[k] = indices.shape.dims[k] / lut.shape.dims[k];
  }
  out->shape.mil_type = lut.shape.mil_type;
  out->shape.bits = lut.shape.bits;
  out->shape.dims = indices.shape.dims;
  out->shape.dims[size_t(axis)] *= D;
  out->shape.elements = indices.shape.elements * D;
  out->v.resize(out->shape.elements);
  const auto istr = Strides(indices.shape.dims), lstr = Strides(lut.shape.dims), ostr = Strides(out->shape.dims);
  std::vector<uint64_t> pos(rank, 0);
  for (uint64_t i = 0; i < indices.shape.elements; ++i) {
    uint64_t rem = i, table = 0;
    for (size_t k = 0; k < rank; ++k) {
      pos[k] = rem / istr[k];
      rem %= istr[k];
      table += (pos[k] / block[k]) * lstr[k];
    }
    const uint64_t entry = uint64_t(indices.v[i]);
    if (entry >= K) return Fail(where, "index " + std::to_string(entry) + " past the table");
    for (uint64_t d = 0; d < D; ++d) {
      uint64_t o = 0;
      for (size_t k = 0; k < rank; ++k) o += (k == size_t(axis) ? pos[k] * D + d : pos[k]) * ostr[k];
      out->v[o] = lut.v[table + entry * lstr[rank] + d];
    }
  }
  return Status::OK();
}

Status ConstexprEvaluator::ShiftScale(const mil::Operation& op, const std::string& where, DenseTensor* out) {
  DenseTensor data, scale, offset;
  bool has_offset = false;
  PALETTIZE_RETURN_IF_ERROR(Param(op, "data", where, &data));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "scale", where, &scale));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "offset", where, &offset, &has_offset));
  const size_t rank = data.shape.dims.size();
  if (scale.shape.dims.size() != rank) return Fail(where, "scale rank differs from data rank");
  std::vector<uint64_t> block(rank);
  for (size_t k = 0; k < rank; ++k) {
    if (scale.shape.dims[k] == 0 || data.shape.dims[k] % scale.shape.dims[k] != 0)
      return Fail(where, "scale dimension " + std::to_string(k) + " does not divide the data's");
    block[k] = data.shape.dims[k] / scale.shape.dims[k];
  }
  const int t = scale.shape.mil_type;
  out->shape = data.shape;
  out->shape.mil_type = t;
  out->shape.bits = scale.shape.bits;
  out->v.resize(data.shape.elements);
  const auto dstr = Strides(data.shape.dims), sstr = Strides(scale.shape.dims);
  for (uint64_t i = 0; i < data.shape.elements; ++i) {
    uint64_t rem = i, s = 0;
    for (size_t k = 0; k < rank; ++k) {
      s += (rem / dstr[k] / block[k]) * sstr[k];
      rem %= dstr[k];
    }
    double x = RoundToDType(data.v[i], t);
    if (has_offset) x = RoundToDType(x - offset.v[s], t);
    out->v[i] = RoundToDType(scale.v[s] * x, t);
  }
  return Status::OK();
}


}  // namespace palettize
