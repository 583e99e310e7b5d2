// Element types of MIL tensors and of weight.bin blobs, and the mapping between them.
#pragma once

#include <cstdint>
#include <string>

namespace palettize {

// A MIL DataType enum value (proto/MIL.proto); kept as int so callers need not include the proto.
struct DTypeInfo {
  int mil_type;         // MILSpec::DataType
  const char* name;     // numpy-style name shown to users: "float16", "uint4", ...
  int bits;             // bits per element; 0 for types of no fixed width (string)
  uint32_t blob_dtype;  // weight.bin dtype code, 0 when the type cannot live in a blob
};

// Returns nullptr for an unknown MIL type.
const DTypeInfo* FindDType(int mil_type);

// Returns nullptr for a blob dtype code not in the format.
const DTypeInfo* FindDTypeByBlobCode(uint32_t blob_dtype);

// "float16" for a known type, "dtype <n>" otherwise.
std::string DTypeName(int mil_type);

// `x` rounded to a value of MIL dtype `mil_type` (float16, bfloat16, float32, int8, uint8; other
// types: unchanged).
double RoundToDType(double x, int mil_type);

}  // namespace palettize
