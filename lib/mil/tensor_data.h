// The values of a const weight, from its blob or its immediate value, as the raw little-endian
// bytes of its MIL dtype (sub-byte types packed LSB-first), checked against its type.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "blob/blob_reader.h"
#include "mil/weights.h"
#include "package/package.h"

namespace palettize {

struct TensorData {
  const uint8_t* data = nullptr;  // points into the weight file's map or into `owned`
  uint64_t size = 0;
  std::string owned;
  std::vector<std::string> strings;  // for string tensors, which have no raw form
};

// Reads the values of `w`. Errors name the weight file and blob, or the const.
Status ReadTensorData(Package& package, const ConstWeight& w, TensorData* out);

// Checks a blob against the tensor it should hold: dtype code and size in bytes. `what` names
// the tensor in the error, e.g. "const 'w'".
Status CheckBlobMatches(const BlobView& blob, const TensorShape& shape, const std::string& what,
                        const std::string& where);

// Reads any tensor value (a const's val, an op attribute or an input bound to a value) whose type
// is `shape`. `what` names it in errors, e.g. "const 'w'".
Status ReadValueData(Package& package, const mil::Value& value, const TensorShape& shape,
                     const std::string& what, TensorData* out);

// Raw little-endian bytes of `values` as MIL dtype `mil_type` (the inverse of ElementAsDouble for
// float16, float32, int8, uint8, int32 and uint32).
std::string EncodeElements(const std::vector<double>& values, int mil_type);

// Decodes element i of numeric raw data as a double (NaN for strings).
double ElementAsDouble(const uint8_t* data, int mil_type, uint64_t i);

}  // namespace palettize
