// Runs a function of an ML Program on CPU: its ops in the order stored (MIL blocks are
// topologically ordered), each by the kernel registered for its type (eval/op_registry.h);
// `const` values from the model or its weight file, constexpr_* chains through
// decompress/constexpr_eval.h. A value is freed after the last op of its block that uses it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "decompress/constexpr_eval.h"
#include "eval/op_registry.h"
#include "eval/tensor.h"
#include "package/package.h"

namespace palettize::eval {

// The values visible in a block: its own, then its enclosing blocks'.
struct Scope {
  std::unordered_map<std::string, Tensor> values;
  const Scope* parent = nullptr;
  const Tensor* Find(const std::string& name) const;
};

class Interpreter {
 public:
  // `package` (and `registry`) must outlive the interpreter.
  explicit Interpreter(Package& package, const OpRegistry& registry = OpRegistry::Builtin());

  // Runs `function` of the root model's ML Program. `inputs` must hold every input of the
  // function, each of its declared dtype and shape (InvalidInput naming the input otherwise);
  // *outputs gets every output of the function's block, by name.
  Status Run(const std::string& function, std::map<std::string, Tensor> inputs,
             std::map<std::string, Tensor>* outputs);

  // Consts whose output is named in `values` take that tensor instead of their own value (same
  // dtype and shape, else InvalidInput): allocation by measured output error runs the model with a
  // weight as a candidate decodes it. The map must outlive the runs; nullptr: none.
  void SetConstValues(const std::unordered_map<std::string, const Tensor*>* values) {
    const_values_ = values;
  }

  // The function's inputs as declared: name -> type.
  static Status FunctionInputs(const Package& package, const std::string& function,
                               std::vector<std::pair<std::string, const mil::ValueType*>>* out);

  // Used by OpContext.
  Status RunBlock(const mil::Block& block, const Scope* parent, const std::vector<Tensor>& inputs,
                  std::vector<Tensor>* outputs);
  Status ValueToTensor(const mil::Value& value, const std::string& what, Tensor* out);
  const std::string& model_file() const { return package_.model_path(); }

 private:
  Status RunOp(const mil::Operation& op, Scope& scope);  // RunOpUnlimited, TensorLimitError as a Status
  Status RunOpUnlimited(const mil::Operation& op, Scope& scope);
  Status RunConst(const mil::Operation& op, Scope& scope);
  Status RunConstexpr(const mil::Operation& op, Scope& scope);

  Package& package_;
  const OpRegistry& registry_;
  std::map<std::string, mil::Operation*> producers_;  // the function's ops by output (constexpr chains)
  std::unique_ptr<ConstexprEvaluator> constexpr_;
  const std::unordered_map<std::string, const Tensor*>* const_values_ = nullptr;
  int depth_ = 0;  // nested blocks being run: bounds a program that nests without end
};

}  // namespace palettize::eval
