// The values of a tensor in a package: a const's val, an op attribute or an input bound to a value,
// held in the model (mil/tensor_data.h) or in a weight file's blob, checked against its type.
#pragma once

#include <string>

#include "mil/tensor_data.h"
#include "mil/weights.h"
#include "package/package.h"

namespace palettize {

// Reads the values of `w`. Errors name the weight file and blob, or the const.
Status ReadTensorData(Package& package, const ConstWeight& w, TensorData* out);

// Reads any tensor value whose type is `shape`. `what` names it in errors, e.g. "const 'w'".
Status ReadValueData(Package& package, const mil::Value& value, const TensorShape& shape,
                     const std::string& what, TensorData* out);

}  // namespace palettize
