// Tensors from and to NumPy .npz arrays (npy/npz.h), for `palettize eval --inputs/--outputs`.
//
// An input array must have exactly the dtype the function declares for that input (numpy's
// name and MIL's agree: float16, float32, int32, bool, ...) and its shape, where the program
// fixes a dimension; nothing is converted, so that a float64 array given for a float32 input is
// a one-line error rather than a silent rounding. Outputs are written in their own dtype
// (float16 as '<f2', bool as '|b1'), but bfloat16, which numpy lacks, as float32.
#pragma once

#include <string>

#include "eval/tensor.h"
#include "mil/weights.h"
#include "npy/npz.h"

namespace palettize::eval {

// The input `array` of `file` checked against the function's declared `type` ("IN.npz: input
// 'x': float64 [1, 3], the model takes float32 [1, 3]", InvalidArgument) and made a Tensor.
Status TensorFromNpy(const NpyArray& array, const std::string& file, const mil::ValueType& type, Tensor* out);

// Output `name` as an array to write; InvalidArgument naming `file` and the output for a string
// tensor (which an .npz of numbers cannot hold).
Status TensorToNpy(const std::string& name, const Tensor& t, const std::string& file, NpyOutArray* out);

}  // namespace palettize::eval
