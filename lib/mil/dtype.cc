#include "mil/dtype.h"

#include <algorithm>
#include <cmath>

#include "MIL.pb.h"
#include "util/half.h"

namespace palettize {

namespace {
using MT = CoreML::Specification::MILSpec::DataType;

// Blob dtype codes are fixed by the weight.bin format (../shared/coreml-format.md section 2).
constexpr DTypeInfo kTypes[] = {
    {MT::BOOL, "bool", 8, 0},
    {MT::STRING, "string", 0, 0},
    {MT::FLOAT16, "float16", 16, 1},
    {MT::FLOAT32, "float32", 32, 2},
    {MT::FLOAT64, "float64", 64, 0},
    {MT::BFLOAT16, "bfloat16", 16, 5},
    {MT::INT8, "int8", 8, 4},
    {MT::INT16, "int16", 16, 6},
    {MT::INT32, "int32", 32, 14},
    {MT::INT64, "int64", 64, 0},
    {MT::INT4, "int4", 4, 8},
    {MT::UINT8, "uint8", 8, 3},
    {MT::UINT16, "uint16", 16, 7},
    {MT::UINT32, "uint32", 32, 15},
    {MT::UINT64, "uint64", 64, 0},
    {MT::UINT4, "uint4", 4, 11},
    {MT::UINT2, "uint2", 2, 10},
    {MT::UINT1, "uint1", 1, 9},
    {MT::UINT6, "uint6", 6, 13},
    {MT::UINT3, "uint3", 3, 12},
    {MT::FLOAT8E4M3FN, "float8e4m3fn", 8, 16},
    {MT::FLOAT8E5M2, "float8e5m2", 8, 17},
};
}  // namespace

const DTypeInfo* FindDType(int mil_type) {
  for (const DTypeInfo& t : kTypes)
    if (t.mil_type == mil_type) return &t;
  return nullptr;
}

const DTypeInfo* FindDTypeByBlobCode(uint32_t blob_dtype) {
  if (blob_dtype == 0) return nullptr;
  for (const DTypeInfo& t : kTypes)
    if (t.blob_dtype == blob_dtype) return &t;
  return nullptr;
}

std::string DTypeName(int mil_type) {
  const DTypeInfo* t = FindDType(mil_type);
  return t ? std::string(t->name) : "dtype " + std::to_string(mil_type);
}

double RoundToDType(double x, int mil_type) {
  switch (mil_type) {
    case MT::FLOAT16: return RoundToHalf(x);
    case MT::BFLOAT16: return RoundToBFloat16(x);
    case MT::FLOAT32: return double(float(x));
    case MT::INT8: return std::clamp(std::nearbyint(x), -128.0, 127.0);
    case MT::UINT8: return std::clamp(std::nearbyint(x), 0.0, 255.0);
    default: return x;
  }
}

}  // namespace palettize
