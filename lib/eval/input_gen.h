// Inputs a run was not given, made from the model's input description, reproducibly: the same
// seed and input name give the same values on every machine (own generator and normal transform,
// nothing implementation-defined from <random>).
#pragma once

#include <cstdint>
#include <string>

#include "eval/tensor.h"
#include "mil/weights.h"

namespace palettize::eval {

// An input `name` of the function's declared `type` (an image input is the float tensor
// [1, C, H, W] the program declares). Floats are normal(0, 1), integers uniform in [0, 10), bools
// 0 or 1. InvalidArgument when the program leaves a dimension unknown.
Status GenerateInput(const std::string& name, const mil::ValueType& type, uint64_t seed, Tensor* out);

}  // namespace palettize::eval
