#include "mil/tensor_data.h"

#include <cmath>
#include <cstring>

#include "blob/blob_format.h"
#include "mil/dtype.h"
#include "util/half.h"

namespace palettize {

namespace {

using MT = mil::DataType;

// Stores double v as one element of `mil_type` at index i of a raw buffer.
void StoreElement(std::string& buf, int mil_type, int bits, uint64_t i, double v) {
  auto put = [&](auto x) { std::memcpy(&buf[i * sizeof x], &x, sizeof x); };
  switch (mil_type) {
    case MT::FLOAT16: put(DoubleToHalfBits(v)); return;
    case MT::BFLOAT16: put(DoubleToBFloat16Bits(v)); return;
    case MT::FLOAT32: put(float(v)); return;
    case MT::FLOAT64: put(v); return;
    case MT::INT8: put(int8_t(v)); return;
    case MT::UINT8:
    case MT::BOOL: put(uint8_t(v)); return;
    case MT::INT16: put(int16_t(v)); return;
    case MT::UINT16: put(uint16_t(v)); return;
    case MT::INT32: put(int32_t(v)); return;
    case MT::UINT32: put(uint32_t(v)); return;
    case MT::INT64: put(int64_t(v)); return;
    case MT::UINT64: put(uint64_t(v)); return;
    default: break;
  }
  if (bits < 8) {  // sub-byte integers, LSB-first
    uint64_t x = uint64_t(int64_t(v)) & ((1u << bits) - 1);
    for (int b = 0; b < bits; ++b) {
      uint64_t bit = i * bits + b;
      if (x >> b & 1) buf[bit / 8] = char(uint8_t(buf[bit / 8]) | (1u << (bit % 8)));
    }
  }
}

template <typename Repeated>
Status FromNumbers(const Repeated& values, const TensorShape& shape, TensorData* out) {
  if (uint64_t(values.size()) != shape.elements)
    return Status::InvalidInput("val: " + std::to_string(values.size()) + " values for " +
                                DescribeShape(shape));
  if (shape.mil_type == MT::FLOAT16 || shape.mil_type == MT::BFLOAT16 || shape.bits == 0 ||
      shape.mil_type == MT::FLOAT8E4M3FN || shape.mil_type == MT::FLOAT8E5M2)
    return Status::InvalidInput("val: numbers given for " + DTypeName(shape.mil_type) +
                                ", which is stored as bytes");
  uint64_t bytes;
  BlobDataSize(shape.elements, shape.bits, &bytes);
  out->owned.assign(bytes, '\0');
  for (uint64_t i = 0; i < shape.elements; ++i)
    StoreElement(out->owned, shape.mil_type, shape.bits, i, double(values[int(i)]));
  return Status::OK();
}

Status FromImmediate(const mil::Value& value, const TensorShape& shape, TensorData* out) {
  if (!value.immediatevalue().has_tensor()) return Status::InvalidInput("val: not a tensor value");
  const mil::TensorValue& t = value.immediatevalue().tensor();
  switch (t.value_case()) {
    case mil::TensorValue::kFloats: return FromNumbers(t.floats().values(), shape, out);
    case mil::TensorValue::kDoubles: return FromNumbers(t.doubles().values(), shape, out);
    case mil::TensorValue::kInts: return FromNumbers(t.ints().values(), shape, out);
    case mil::TensorValue::kLongInts: return FromNumbers(t.longints().values(), shape, out);
    case mil::TensorValue::kBools: return FromNumbers(t.bools().values(), shape, out);
    case mil::TensorValue::kStrings:
      if (shape.mil_type != MT::STRING)
        return Status::InvalidInput("val: strings given for " + DescribeShape(shape));
      if (uint64_t(t.strings().values_size()) != shape.elements)
        return Status::InvalidInput("val: " + std::to_string(t.strings().values_size()) + " values for " +
                                    DescribeShape(shape));
      out->strings.assign(t.strings().values().begin(), t.strings().values().end());
      return Status::OK();
    case mil::TensorValue::kBytes: {
      uint64_t expected;
      BlobDataSize(shape.elements, shape.bits, &expected);
      const std::string& b = t.bytes().values();
      if (shape.bits == 0 || b.size() != expected)
        return Status::InvalidInput("val: " + std::to_string(b.size()) + " bytes, but " +
                                    DescribeShape(shape) + " needs " + std::to_string(expected));
      out->data = reinterpret_cast<const uint8_t*>(b.data());
      out->size = b.size();
      return Status::OK();
    }
    default: return Status::InvalidInput("val: empty tensor value");
  }
}

}  // namespace

Status CheckBlobMatches(const BlobView& blob, const TensorShape& shape, const std::string& what,
                        const std::string& where) {
  const DTypeInfo* info = FindDType(shape.mil_type);
  if (info == nullptr || info->blob_dtype != blob.blob_dtype) {
    const DTypeInfo* stored = FindDTypeByBlobCode(blob.blob_dtype);
    return Status::InvalidInput(where + ": dtype " + (stored ? stored->name : "?") + " does not match " +
                                what + " (" + DescribeShape(shape) + ")");
  }
  uint64_t expected;
  if (!BlobDataSize(shape.elements, shape.bits, &expected) || expected != blob.size)
    return Status::InvalidInput(where + ": size " + std::to_string(blob.size) + " bytes, but " + what + " (" +
                                DescribeShape(shape) + ") needs " + std::to_string(expected));
  return Status::OK();
}

Status ReadImmediateData(const mil::Value& value, const TensorShape& shape, TensorData* out) {
  *out = TensorData();
  PALETTIZE_RETURN_IF_ERROR(FromImmediate(value, shape, out));
  if (!out->owned.empty()) {
    out->data = reinterpret_cast<const uint8_t*>(out->owned.data());
    out->size = out->owned.size();
  }
  return Status::OK();
}

std::string EncodeElements(const std::vector<double>& values, int mil_type) {
  const DTypeInfo* info = FindDType(mil_type);
  uint64_t bytes = 0;
  if (info == nullptr || info->bits == 0 || !BlobDataSize(values.size(), info->bits, &bytes)) return "";
  std::string out(bytes, '\0');
  for (uint64_t i = 0; i < values.size(); ++i) StoreElement(out, mil_type, info->bits, i, values[i]);
  return out;
}

double ElementAsDouble(const uint8_t* data, int mil_type, uint64_t i) {
  auto get = [&](auto x) {
    std::memcpy(&x, data + i * sizeof x, sizeof x);
    return double(x);
  };
  switch (mil_type) {
    case MT::FLOAT16: return HalfToFloat(uint16_t(get(uint16_t())));
    case MT::BFLOAT16: return BFloat16ToFloat(uint16_t(get(uint16_t())));
    case MT::FLOAT32: return get(float());
    case MT::FLOAT64: return get(double());
    case MT::INT8: return get(int8_t());
    case MT::UINT8: return get(uint8_t());
    case MT::BOOL: return data[i] != 0;
    case MT::INT16: return get(int16_t());
    case MT::UINT16: return get(uint16_t());
    case MT::INT32: return get(int32_t());
    case MT::UINT32: return get(uint32_t());
    case MT::INT64: return get(int64_t());
    case MT::UINT64: return get(uint64_t());
    case MT::FLOAT8E4M3FN: {
      uint8_t b = data[i];
      int exp = (b >> 3) & 0xF, mant = b & 7;
      double v = (exp == 0xF && mant == 7) ? NAN
                 : exp == 0                ? std::ldexp(mant / 8.0, -6)
                                           : std::ldexp(1 + mant / 8.0, exp - 7);
      return (b & 0x80) ? -v : v;
    }
    case MT::FLOAT8E5M2: return HalfToFloat(uint16_t(data[i]) << 8);
    default: break;
  }
  const DTypeInfo* info = FindDType(mil_type);
  if (info == nullptr || info->bits == 0 || info->bits >= 8) return NAN;
  uint64_t x = 0;
  for (int b = 0; b < info->bits; ++b) {
    uint64_t bit = i * info->bits + b;
    x |= uint64_t(data[bit / 8] >> (bit % 8) & 1) << b;
  }
  if (mil_type == MT::INT4 && (x & 8)) return double(int64_t(x) - 16);
  return double(x);
}

}  // namespace palettize
