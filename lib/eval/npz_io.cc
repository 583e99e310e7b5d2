// Rules: npz_io.h.
#include "eval/npz_io.h"

#include <cstring>

#include "MIL.pb.h"
#include "eval/op_context.h"
#include "mil/dtype.h"
#include "util/half.h"

namespace palettize::eval {

namespace {

namespace MT = CoreML::Specification::MILSpec;

// The .npy dtype of the same name as MIL dtype `mil_type`; false when numpy has none.
bool NpyOf(int mil_type, NpyDType* out) {
  const std::string name = DTypeName(mil_type);
  for (int t = 0; t <= int(NpyDType::kF8); ++t) {
    if (name == NpyDTypeName(NpyDType(t))) {
      *out = NpyDType(t);
      return true;
    }
  }
  return false;
}

template <typename T>
void Append(std::string* out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof v);
  out->append(b, sizeof v);
}

}  // namespace

Status TensorFromNpy(const NpyArray& array, const std::string& file, const mil::ValueType& type,
                     Tensor* out) {
  const DeclaredType want = ParseDeclaredType(type);
  NpyDType dtype;
  bool shape_ok = want.dims.size() == array.shape.size();
  for (size_t k = 0; shape_ok && k < want.dims.size(); ++k)
    shape_ok = want.dims[k] < 0 || uint64_t(want.dims[k]) == array.shape[k];
  if (!want.tensor || !NpyOf(want.dtype, &dtype) || dtype != array.dtype || !shape_ok) {
    std::string given = std::string(NpyDTypeName(array.dtype)) + " [";
    for (size_t k = 0; k < array.shape.size(); ++k) given += (k ? ", " : "") + std::to_string(array.shape[k]);
    const std::string declared =
        want.tensor ? DTypeName(want.dtype) + " " + ShapeText(want.dims) : "not a tensor";
    return Status::InvalidArgument(file + ": input '" + array.name + "': " + given + "], the model takes " +
                                   declared);
  }
  std::vector<int64_t> shape(array.shape.begin(), array.shape.end());
  Tensor t(want.dtype, shape);
  for (size_t k = 0; k < t.size(); ++k) t.set(k, array.At(k));
  if (array.dtype == NpyDType::kI8 || array.dtype == NpyDType::kU8) {  // exact beyond 2^53
    for (size_t k = 0; k < t.size(); ++k) std::memcpy(&t.i()[k], array.data + 8 * k, 8);
  }
  *out = std::move(t);
  return Status::OK();
}

Status TensorToNpy(const std::string& name, const Tensor& t, const std::string& file, NpyOutArray* out) {
  NpyDType dtype;
  if (t.dtype() == MT::BFLOAT16)
    dtype = NpyDType::kF4;
  else if (!NpyOf(t.dtype(), &dtype))
    return Status::InvalidArgument(file + ": output '" + name + "' is " + DescribeTensor(t) +
                                   ", which an .npz of numbers cannot hold");
  out->name = name;
  out->dtype = dtype;
  out->shape.assign(t.shape().begin(), t.shape().end());
  out->bytes.clear();
  out->bytes.reserve(t.size() * NpyDTypeSize(dtype));
  for (size_t k = 0; k < t.size(); ++k) {
    switch (dtype) {
      case NpyDType::kF2: Append(&out->bytes, DoubleToHalfBits(t.f()[k])); break;
      case NpyDType::kF4: Append(&out->bytes, t.f()[k]); break;
      case NpyDType::kF8: Append(&out->bytes, double(t.f()[k])); break;
      case NpyDType::kBool: Append(&out->bytes, uint8_t(t.i()[k] != 0)); break;
      case NpyDType::kI1: Append(&out->bytes, int8_t(t.i()[k])); break;
      case NpyDType::kU1: Append(&out->bytes, uint8_t(t.i()[k])); break;
      case NpyDType::kI2: Append(&out->bytes, int16_t(t.i()[k])); break;
      case NpyDType::kU2: Append(&out->bytes, uint16_t(t.i()[k])); break;
      case NpyDType::kI4: Append(&out->bytes, int32_t(t.i()[k])); break;
      case NpyDType::kU4: Append(&out->bytes, uint32_t(t.i()[k])); break;
      case NpyDType::kI8: Append(&out->bytes, int64_t(t.i()[k])); break;
      case NpyDType::kU8: Append(&out->bytes, uint64_t(t.i()[k])); break;
    }
  }
  return Status::OK();
}

}  // namespace palettize::eval
