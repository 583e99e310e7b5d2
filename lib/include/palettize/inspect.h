// Inspect: what `palettize inspect` reports about a model's weights, the equivalent of
// coremltools.optimize.coreml.get_weights_metadata, plus whether each weight would be palettized.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

struct InspectOptions {
  // A weight is a palettization candidate only with more elements than this (coremltools'
  // weight_threshold). It does not change which weights are listed.
  uint64_t weight_threshold = 2048;
};

struct ConsumerInfo {
  std::string op_type;
  std::string op_name;
  std::string input;
};

struct WeightInfo {
  std::string program;  // "" for the root model, "pipeline.models[1]" for nested ones
  std::string function;
  std::string name;
  std::string dtype;  // numpy-style: "float16", "float32", "int8", ...
  std::vector<uint64_t> shape;
  uint64_t elements = 0;
  uint64_t bytes = 0;    // size of the stored values
  bool in_blob = false;  // storage: weight.bin blob, else an immediate value in model.mlmodel
  uint64_t unique_values = 0;
  double sparsity = 0;  // fraction of elements with |x| <= 1e-12
  std::vector<ConsumerInfo> consumers;
  bool candidate = false;
  std::string reason;  // why not a candidate; empty for candidates
};

// An op type `palettize eval` has no kernel for, in one function.
struct UnsupportedOpInfo {
  std::string op_type;
  uint64_t count = 0;      // ops of this type in the function (nested blocks included)
  std::string example_op;  // the first one's name
};

struct FunctionInfo {
  std::string name;
  std::string opset;
  // Whether `palettize eval --function NAME` can run it: a function of the root model's ML
  // Program (eval runs no pipeline) with no unsupported op.
  bool evaluable = false;
  std::vector<UnsupportedOpInfo> unsupported_ops;  // sorted by op_type
};

struct ProgramInfo {
  std::string path;
  int specification_version = 0;
  std::vector<FunctionInfo> functions;
};

struct ModelInfo {
  std::string path;
  int specification_version = 0;
  std::string type;  // "mlProgram", "pipeline", "pipelineClassifier", "pipelineRegressor", "other"
  std::vector<ProgramInfo> programs;
  uint64_t total_weight_bytes = 0;  // each stored value counted once, even when shared
  std::vector<WeightInfo> weights;
};

// Reads the package at `path` and describes every const weight (tensor of rank >= 1) in every
// ML Program in it. Validates every weight's storage on the way.
Status Inspect(const std::string& path, const InspectOptions& options, ModelInfo* out);

// `info` as the JSON document of docs/format.md ("inspect --json").
std::string InspectToJson(const ModelInfo& info);

// `info` as a table for people.
std::string InspectToTable(const ModelInfo& info);

}  // namespace palettize
