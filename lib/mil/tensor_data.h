// Tensor values as the raw little-endian bytes of their MIL dtype (sub-byte types packed
// LSB-first), checked against their type: from an immediate value here, from a blob in
// package/tensor_reader.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blob/blob_reader.h"
#include "mil/weights.h"

namespace palettize {

struct TensorData {
  const uint8_t* data = nullptr;  // points into the weight file's map or into `owned`
  uint64_t size = 0;
  std::string owned;
  std::vector<std::string> strings;  // for string tensors, which have no raw form
};

// Checks a blob against the tensor it should hold: dtype code and size in bytes. `what` names
// the tensor in the error, e.g. "const 'w'".
Status CheckBlobMatches(const BlobView& blob, const TensorShape& shape, const std::string& what,
                        const std::string& where);

// Reads an immediate tensor value (one held in the model, not in a blob) whose type is `shape`.
// Errors name the field ("val: 3 values for float32 [2, 2]"); the caller says where it is.
Status ReadImmediateData(const mil::Value& value, const TensorShape& shape, TensorData* out);

// Raw little-endian bytes of `values` as MIL dtype `mil_type` (the inverse of ElementAsDouble for
// float16, float32, int8, uint8, int32 and uint32).
std::string EncodeElements(const std::vector<double>& values, int mil_type);

// Decodes element i of numeric raw data as a double (NaN for strings).
double ElementAsDouble(const uint8_t* data, int mil_type, uint64_t i);

}  // namespace palettize
