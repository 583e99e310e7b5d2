// palettize eval: runs a function of an ML Program on CPU (lib/eval) with inputs from a NumPy
// .npz file or generated from the model's input description, and writes or summarises its outputs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

struct EvalOptions {
  // .npz of inputs by name, each of the dtype and shape the function declares (not converted);
  // an array naming no input is an error. "" generates every input.
  std::string inputs_path;
  // .npz to write every output to, under its name (path rules as compress's); "" writes nothing.
  std::string outputs_path;
  std::string function = "main";
  // Seeds the inputs the .npz lacks: floats normal(0, 1) (image inputs too: the float tensor
  // [1, C, H, W] the program declares), integers uniform in [0, 10), bools 0 or 1. The same seed
  // gives the same inputs on every machine.
  uint64_t seed = 0;
  bool overwrite = false;  // replace an existing outputs_path
};

struct EvalTensorSummary {
  std::string name;
  std::string dtype;  // numpy-style, "float32"
  std::vector<int64_t> shape;
  double min = 0, max = 0, mean = 0;  // NaN for strings
  bool generated = false;             // inputs only: made from the description, not read
};

struct EvalReport {
  std::vector<EvalTensorSummary> inputs;
  std::vector<EvalTensorSummary> outputs;
};

// Loads `model`, runs options.function on the inputs and fills `report`. Errors: an unsupported
// op or malformed program is InvalidInput naming the op; a missing function, or an input of the
// wrong dtype or shape, InvalidArgument naming it; files that cannot be read or written IOError.
Status Eval(const std::string& model, const EvalOptions& options, EvalReport* report);

// One line per output: "NAME  float32 [1, 3]  min ... max ... mean ...".
std::string EvalSummaryToText(const EvalReport& report);

}  // namespace palettize
