// The const weights of a model's ML Programs: every `const` op holding a tensor of rank >= 1,
// where it lives (blob or immediate value) and which ops consume it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "Model.pb.h"
#include "mil/dtype.h"
#include "palettize/status.h"

namespace palettize {

namespace spec = CoreML::Specification;
namespace mil = CoreML::Specification::MILSpec;

struct TensorShape {
  int mil_type = 0;
  std::vector<uint64_t> dims;
  uint64_t elements = 0;
  int bits = 0;  // per element; 0 for strings
};

// Validates a tensor type: known dtype, rank equal to the number of dimensions, every dimension
// constant, and element count and bit size that fit in 64 bits. Errors carry no context.
Status ParseTensorType(const mil::ValueType& type, TensorShape* out);

// "float16 [800, 784]"
std::string DescribeShape(const TensorShape& shape);

struct Consumer {
  std::string op_type;
  std::string op_name;
  std::string input;  // the consumer's input that the weight feeds
  // The consumer's inputs that are scalar constants (bool, int or float), e.g. matmul's
  // transpose_y or conv's groups: what choosing a channel axis needs to know.
  std::map<std::string, double> scalar_inputs;
};

struct ConstWeight {
  std::string program;  // "" for the root model, "pipeline.models[1]" for nested ones
  spec::Model* owner = nullptr;
  std::string function;
  std::string name;             // the const op's name
  std::string output;           // the name consumers bind to
  mil::Block* block = nullptr;  // the block holding `op`
  mil::Operation* op = nullptr;
  mil::Value* value = nullptr;  // attributes["val"]
  TensorShape shape;
  std::vector<Consumer> consumers;
};

// Lists the weights of every ML Program in `model`, in a deterministic order (program, function,
// block, op). Fails on a const whose type or value is malformed; the error names the program,
// function and const.
Status FindWeights(spec::Model& model, std::vector<ConstWeight>* out);

// Fills what every per-weight result (inspect's WeightInfo, compare's WeightComparison) starts
// with: where the const is, its name, dtype and shape.
template <typename Result>
void SetWeightIdentity(const ConstWeight& w, Result* r) {
  r->program = w.program;
  r->function = w.function;
  r->name = w.name;
  r->dtype = DTypeName(w.shape.mil_type);
  r->shape = w.shape.dims;
}

}  // namespace palettize
