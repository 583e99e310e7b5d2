#include "decompress/constexpr_eval.h"

#include <algorithm>
#include <cstdio>

#include "MIL.pb.h"
#include "encode/bit_pack.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "package/tensor_reader.h"

namespace palettize {

namespace {

using MT = mil::DataType;

// Ops one chain may hold: real chains have at most three (an int8 LUT's shift/scale, the LUT,
// a per-channel scale).
constexpr int kMaxChainOps = 16;

// "-1", "0.5", "nan": a value the file holds where a size or an axis belongs.
std::string ShortDouble(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

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
  if (!IsDecompressible(op)) return Fail(where, "cannot be decompressed");
  if (depth_ >= kMaxChainOps)
    return Fail(where, "chain of more than " + std::to_string(kMaxChainOps) +
                           " constexpr ops (or one that feeds itself)");
  if (op.outputs_size() != 1)
    return Fail(where, "expected 1 output, found " + std::to_string(op.outputs_size()));
  TensorShape declared;
  Status st = ParseTensorType(op.outputs(0).type(), &declared);
  if (!st.ok()) return Fail(where, "output " + st.message());
  ++depth_;
  if (op.type() == "constexpr_blockwise_shift_scale")
    st = ShiftScale(op, where, declared, out);
  else if (op.attributes().count("shape"))
    st = LutToDenseIOS16(op, where, declared, out);
  else
    st = LutToDense(op, where, declared, out);
  --depth_;
  return st;
}

Status ConstexprEvaluator::CheckDefinedBefore(const mil::Operation& op,
                                              const std::set<std::string>& defined) {
  for (const std::string& input : SortedKeys(op.inputs()))
    for (const auto& b : op.inputs().at(input).arguments())
      if (b.binding_case() == mil::Argument::Binding::kName && !defined.count(b.name()))
        return Fail(op.type() + " '" + OpName(op) + "'",
                    "input '" + input + "' names '" + b.name() + "', which no op before it defines");
  return Status::OK();
}

Status ConstexprEvaluator::Param(const mil::Operation& op, const std::string& name, const std::string& where,
                                 DenseTensor* out, bool* present) {
  if (present) *present = true;
  const mil::Value* value = nullptr;
  if (auto a = op.attributes().find(name); a != op.attributes().end()) value = &a->second;
  if (auto in = op.inputs().find(name); value == nullptr && in != op.inputs().end()) {
    if (in->second.arguments_size() != 1) return Fail(where, "input '" + name + "' is not one argument");
    const auto& b = in->second.arguments(0);
    if (b.binding_case() == mil::Argument::Binding::kName) {
      auto p = producers_.find(b.name());
      if (p == producers_.end() || (p->second->type() != "const" && !IsDecompressible(*p->second)))
        return Fail(where, "input '" + name + "' names '" + b.name() + "', which is not a constant");
      if (p->second->type() != "const") return EvalOp(*p->second, out);
      const mil::Operation& c = *p->second;
      auto val = c.attributes().find("val");
      if (c.outputs_size() != 1 || val == c.attributes().end())
        return Fail(where, "input '" + name + "': const '" + b.name() + "' has no value");
      return Read(val->second, c.outputs(0).type(), where + ": " + name, out);
    }
    value = &b.value();
  }
  if (value == nullptr) {
    if (present) {
      *present = false;
      return Status::OK();
    }
    return Fail(where, "missing '" + name + "'");
  }
  return Read(*value, value->type(), where + ": " + name, out);
}

Status ConstexprEvaluator::Read(const mil::Value& v, const mil::ValueType& type, const std::string& what,
                                DenseTensor* out) {
  PALETTIZE_RETURN_IF_ERROR(
      ParseTensorType(type, &out->shape).WithContext(package_.model_path() + ": " + what));
  TensorData data;
  PALETTIZE_RETURN_IF_ERROR(ReadValueData(package_, v, out->shape, what, &data));
  if (out->shape.bits == 0)
    return Status::InvalidInput(package_.model_path() + ": " + what + ": not a numeric tensor");
  out->v.resize(out->shape.elements);
  for (uint64_t i = 0; i < out->shape.elements; ++i)
    out->v[i] = ElementAsDouble(data.data, out->shape.mil_type, i);
  return Status::OK();
}

Status ConstexprEvaluator::Fail(const std::string& where, const std::string& msg) {
  return Status::InvalidInput(package_.model_path() + ": " + where + ": " + msg);
}

Status ConstexprEvaluator::Expect(const DenseTensor& t, const std::string& where, const std::string& name,
                                  std::initializer_list<int> dtypes, int rank) {
  if (std::find(dtypes.begin(), dtypes.end(), t.shape.mil_type) == dtypes.end()) {
    std::string allowed;
    for (int d : dtypes) allowed += (allowed.empty() ? "" : ", ") + DTypeName(d);
    return Fail(where, name + ": dtype " + DTypeName(t.shape.mil_type) + " is not one of " + allowed);
  }
  const size_t r = t.shape.dims.size();
  if (rank >= 0 ? r != size_t(rank) : r == 0)
    return Fail(where, name + ": rank " + std::to_string(r) + ", expected " +
                           (rank >= 0 ? std::to_string(rank) : std::string("at least 1")));
  return Status::OK();
}

Status ConstexprEvaluator::CheckDeclared(const std::string& where, const TensorShape& computed,
                                         const TensorShape& declared) {
  if (computed.mil_type == declared.mil_type && computed.dims == declared.dims) return Status::OK();
  return Fail(where, "output declared " + DescribeShape(declared) + ", but its inputs make " +
                         DescribeShape(computed));
}

Status ConstexprEvaluator::LutToDenseIOS16(const mil::Operation& op, const std::string& where,
                                           const TensorShape& declared, DenseTensor* out) {
  // Attributes: indices uint8 [packed bytes], lut [2^nbits], shape [rank] of the output.
  DenseTensor indices, lut, shape;
  PALETTIZE_RETURN_IF_ERROR(Param(op, "indices", where, &indices));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "lut", where, &lut));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "shape", where, &shape));
  PALETTIZE_RETURN_IF_ERROR(Expect(indices, where, "indices", {MT::UINT8}, 1));
  PALETTIZE_RETURN_IF_ERROR(Expect(lut, where, "lut", {MT::FLOAT16, MT::FLOAT32, MT::INT8, MT::UINT8}, 1));
  PALETTIZE_RETURN_IF_ERROR(Expect(shape, where, "shape", {MT::UINT32, MT::INT32, MT::UINT64, MT::INT64}, 1));
  const uint64_t K = lut.shape.elements;
  int nbits = 0;
  while (nbits < 8 && (uint64_t(1) << nbits) < K) ++nbits;
  if (K < 2 || (uint64_t(1) << nbits) != K)
    return Fail(where, "lut size " + std::to_string(K) + " is not 2^nbits (nbits 1-8)");
  TensorShape result;
  result.mil_type = lut.shape.mil_type;
  result.bits = lut.shape.bits;
  result.elements = 1;
  for (double d : shape.v) {
    // Below 2^53 so that the double holds it exactly; a product past 64 bits is refused below.
    if (!(d >= 0 && d < 9007199254740992.0))
      return Fail(where, "shape: dimension " + ShortDouble(d) + " is not a size");
    result.dims.push_back(uint64_t(d));
    if (__builtin_mul_overflow(result.elements, uint64_t(d), &result.elements))
      return Fail(where, "shape: the product of " + DescribeShape(result) + " does not fit in 64 bits");
  }
  uint64_t bits;
  if (__builtin_mul_overflow(result.elements, uint64_t(nbits), &bits) ||
      (bits + 7) / 8 != indices.shape.elements)
    return Fail(
        where, "indices: " + std::to_string(indices.shape.elements) + " bytes, but " +
                   std::to_string(result.elements) + " elements of " + std::to_string(nbits) + " bits need " +
                   (bits / uint64_t(nbits) == result.elements ? std::to_string((bits + 7) / 8) : "more"));
  PALETTIZE_RETURN_IF_ERROR(CheckDeclared(where, result, declared));
  std::vector<uint8_t> bytes(indices.v.begin(), indices.v.end());
  out->shape = std::move(result);
  out->v.resize(out->shape.elements);
  for (uint64_t i = 0; i < out->shape.elements; ++i) out->v[i] = lut.v[UnpackBits(bytes.data(), i, nbits)];
  return Status::OK();
}

Status ConstexprEvaluator::LutToDense(const mil::Operation& op, const std::string& where,
                                      const TensorShape& declared, DenseTensor* out) {
  // iOS18 inputs: indices uint1..uint8 [d_0..d_{K-1}], lut [g_0..g_{K-1}, 2^nbits, D] (g_k divides
  // d_k), vector_axis int scalar when D > 1; the output is indices' shape with the vector axis
  // times D.
  DenseTensor indices, lut;
  PALETTIZE_RETURN_IF_ERROR(Param(op, "indices", where, &indices));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "lut", where, &lut));
  PALETTIZE_RETURN_IF_ERROR(Expect(indices, where, "indices",
                                   {MT::UINT1, MT::UINT2, MT::UINT3, MT::UINT4, MT::UINT6, MT::UINT8}, -1));
  const size_t rank = indices.shape.dims.size();
  PALETTIZE_RETURN_IF_ERROR(
      Expect(lut, where, "lut", {MT::FLOAT16, MT::FLOAT32, MT::INT8, MT::UINT8}, int(rank + 2)));
  const uint64_t K = lut.shape.dims[rank], D = lut.shape.dims[rank + 1];
  if (K != uint64_t(1) << indices.shape.bits)
    return Fail(where, "lut: " + std::to_string(K) + " entries per table, but " +
                           DTypeName(indices.shape.mil_type) + " indices need " +
                           std::to_string(uint64_t(1) << indices.shape.bits));
  if (D == 0) return Fail(where, "lut: vector length 0");
  int64_t axis = 0;
  if (D > 1) {
    DenseTensor va;
    PALETTIZE_RETURN_IF_ERROR(Param(op, "vector_axis", where, &va));
    PALETTIZE_RETURN_IF_ERROR(
        Expect(va, where, "vector_axis", {MT::INT32, MT::INT64, MT::INT16, MT::INT8}, 0));
    axis = int64_t(va.v[0]);
    if (axis < 0) axis += int64_t(rank);
    if (axis < 0 || axis >= int64_t(rank))
      return Fail(where,
                  "vector_axis " + ShortDouble(va.v[0]) + " is not an axis of rank " + std::to_string(rank));
  }
  std::vector<uint64_t> block(rank);
  for (size_t k = 0; k < rank; ++k) {
    if (lut.shape.dims[k] == 0 || indices.shape.dims[k] % lut.shape.dims[k] != 0)
      return Fail(where, "lut dimension " + std::to_string(k) + " does not divide the indices'");
    block[k] = indices.shape.dims[k] / lut.shape.dims[k];
  }
  TensorShape result;
  result.mil_type = lut.shape.mil_type;
  result.bits = lut.shape.bits;
  result.dims = indices.shape.dims;
  if (__builtin_mul_overflow(result.dims[size_t(axis)], D, &result.dims[size_t(axis)]) ||
      __builtin_mul_overflow(indices.shape.elements, D, &result.elements))
    return Fail(where, "output size does not fit in 64 bits");
  PALETTIZE_RETURN_IF_ERROR(CheckDeclared(where, result, declared));
  out->shape = std::move(result);
  out->v.resize(out->shape.elements);
  const auto istr = Strides(indices.shape.dims), lstr = Strides(lut.shape.dims),
             ostr = Strides(out->shape.dims);
  std::vector<uint64_t> pos(rank, 0);
  for (uint64_t i = 0; i < indices.shape.elements; ++i) {
    uint64_t rem = i, table = 0;
    for (size_t k = 0; k < rank; ++k) {
      pos[k] = rem / istr[k];
      rem %= istr[k];
      table += (pos[k] / block[k]) * lstr[k];
    }
    const uint64_t entry = uint64_t(indices.v[i]);  // < K: the dtype holds nbits
    for (uint64_t d = 0; d < D; ++d) {
      uint64_t o = 0;
      for (size_t k = 0; k < rank; ++k) o += (k == size_t(axis) ? pos[k] * D + d : pos[k]) * ostr[k];
      out->v[o] = lut.v[table + entry * lstr[rank] + d];
    }
  }
  return Status::OK();
}

Status ConstexprEvaluator::ShiftScale(const mil::Operation& op, const std::string& where,
                                      const TensorShape& declared, DenseTensor* out) {
  // iOS18 inputs: data [d_0..d_{K-1}], scale [s_0..s_{K-1}] (s_k divides d_k), offset of scale's
  // shape (optional); the output has data's shape and scale's dtype.
  DenseTensor data, scale, offset;
  bool has_offset = false;
  PALETTIZE_RETURN_IF_ERROR(Param(op, "data", where, &data));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "scale", where, &scale));
  PALETTIZE_RETURN_IF_ERROR(Param(op, "offset", where, &offset, &has_offset));
  const std::initializer_list<int> kSource = {MT::INT4,  MT::UINT4,   MT::INT8,
                                              MT::UINT8, MT::FLOAT16, MT::FLOAT32};
  PALETTIZE_RETURN_IF_ERROR(Expect(data, where, "data", kSource, -1));
  const size_t rank = data.shape.dims.size();
  PALETTIZE_RETURN_IF_ERROR(Expect(scale, where, "scale", {MT::FLOAT16, MT::FLOAT32}, int(rank)));
  if (has_offset) {
    PALETTIZE_RETURN_IF_ERROR(Expect(offset, where, "offset", kSource, int(rank)));
    if (offset.shape.dims != scale.shape.dims)
      return Fail(where, "offset shape " + DescribeShape(offset.shape) + " differs from scale shape " +
                             DescribeShape(scale.shape));
  }
  std::vector<uint64_t> block(rank);
  for (size_t k = 0; k < rank; ++k) {
    if (scale.shape.dims[k] == 0 || data.shape.dims[k] % scale.shape.dims[k] != 0)
      return Fail(where, "scale dimension " + std::to_string(k) + " does not divide the data's");
    block[k] = data.shape.dims[k] / scale.shape.dims[k];
  }
  const int t = scale.shape.mil_type;
  TensorShape result = data.shape;
  result.mil_type = t;
  result.bits = scale.shape.bits;
  PALETTIZE_RETURN_IF_ERROR(CheckDeclared(where, result, declared));
  out->shape = std::move(result);
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
