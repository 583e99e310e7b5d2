// Palettizing one tensor held in memory, exactly as `compress` palettizes a module weight of a
// safetensors checkpoint (palettize/checkpoint.h): the same module rule (channel axis 0), plan,
// tables and decoded values, bit for bit. This is the entry point of the Python package
// (python/, `palettize.torch`), which hands over each module's weight without a file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettize/config.h"
#include "palettize/status.h"

namespace palettize {

struct TensorInput {
  std::string name;         // for messages and the report: "features.0.weight"
  std::string module_type;  // "Linear", "Conv1d", "Conv2d" or "Embedding"
  std::string dtype;        // the safetensors name of the element type: "F16", "BF16", "F32", "F64"
  std::vector<uint64_t> shape;
  const void* data = nullptr;  // the elements, row-major, little-endian; at least 8-byte aligned
  // Optional per-element sensitivities (float32, the tensor's shape): the k-means objective becomes
  // sum_i s_i (w_i - c(w_i))^2, as with `--sensitivity`. Finite and >= 0.
  const float* sensitivity = nullptr;
  bool sensitivity_normalize = false;  // as `--sensitivity-normalize` (coremltools' SKMPalettizer)
};

struct TensorOutput {
  bool palettized = false;
  std::string reason;   // why not, when !palettized (too small, group does not divide, ...)
  std::string decoded;  // palettized: the values it decompresses to, as bytes of the input's dtype
  int nbits = 0;
  uint64_t tables = 0;
  double snr_db = 0;
};

// Plans and palettizes `in` with `config` (weight_threshold applies as in the CLI; the Python
// package passes 0, as coremltools.optimize.torch has no threshold). A config the planner cannot
// apply (e.g. group_size not dividing the channels) is not an error: out->reason says why.
// Errors (InvalidArgument naming `in.name`): an unknown dtype or module type, a shape that does
// not fit the module type, a null data pointer, a negative or non-finite sensitivity.
Status PalettizeTensor(const TensorInput& in, const PalettizeConfig& config, TensorOutput* out);

}  // namespace palettize
