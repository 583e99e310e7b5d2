#include "eval/interpreter.h"

#include <cstring>
#include <set>

#include "MIL.pb.h"
#include "eval/limits.h"
#include "eval/op_context.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "package/tensor_reader.h"
#include "util/half_array.h"

namespace palettize::eval {

namespace {

namespace MT = CoreML::Specification::MILSpec;

// Nested blocks (cond inside while_loop inside ...) deeper than this are refused, so a crafted
// program cannot exhaust the stack.
constexpr int kMaxBlockDepth = 64;

// Every name an op reads, its nested blocks' reads included: the op keeps those values alive.
void NamesUsed(const mil::Operation& op, std::set<std::string>* names) {
  for (const auto& [param, arg] : op.inputs())
    for (const auto& binding : arg.arguments())
      if (binding.binding_case() == mil::Argument::Binding::kName) names->insert(binding.name());
  for (const mil::Block& b : op.blocks()) {
    for (const std::string& o : b.outputs()) names->insert(o);
    for (const mil::Operation& inner : b.operations()) NamesUsed(inner, names);
  }
}

}  // namespace

const Tensor* Scope::Find(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent) {
    auto it = s->values.find(name);
    if (it != s->values.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(Package& package, const OpRegistry& registry)
    : package_(package), registry_(registry) {}

static Status FindFunction(const Package& package, const std::string& function, const mil::Function** out) {
  const spec::Model& model = package.model();
  if (model.Type_case() != spec::Model::kMlProgram)
    return Status::InvalidInput(package.model_path() +
                                ": not an ML Program (palettize eval runs ML Programs)");
  const auto& functions = model.mlprogram().functions();
  auto it = functions.find(function);
  if (it == functions.end()) {
    std::string names;
    for (const std::string& n : SortedKeys(functions)) names += (names.empty() ? "" : ", ") + n;
    return Status::InvalidArgument(package.model_path() + ": no function '" + function +
                                   "' (the program has: " + names + ")");
  }
  *out = &it->second;
  return Status::OK();
}

Status Interpreter::FunctionInputs(const Package& package, const std::string& function,
                                   std::vector<std::pair<std::string, const mil::ValueType*>>* out) {
  const mil::Function* f = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FindFunction(package, function, &f));
  out->clear();
  for (const auto& in : f->inputs()) out->emplace_back(in.name(), &in.type());
  return Status::OK();
}

Status Interpreter::Run(const std::string& function, std::map<std::string, Tensor> inputs,
                        std::map<std::string, Tensor>* outputs) {
  const mil::Function* f = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FindFunction(package_, function, &f));
  auto spec_it = f->block_specializations().find(f->opset());
  if (spec_it == f->block_specializations().end())
    return Status::InvalidInput(package_.model_path() + ": function '" + function +
                                "' has no block for its opset '" + f->opset() + "'");
  mil::Block& block = (*package_.model().mutable_mlprogram()->mutable_functions())[function]
                          .mutable_block_specializations()
                          ->at(f->opset());
  producers_.clear();
  std::set<std::string> chain_inputs;
  IndexProducers(block, &producers_, &chain_inputs);
  constexpr_ = std::make_unique<ConstexprEvaluator>(package_, producers_);

  Scope scope;
  for (const auto& in : f->inputs()) {
    auto it = inputs.find(in.name());
    if (it == inputs.end()) return Status::InvalidArgument("input '" + in.name() + "': missing");
    const DeclaredType want = ParseDeclaredType(in.type());
    const Tensor& t = it->second;
    bool shape_ok = want.dims.size() == t.shape().size();
    for (size_t k = 0; shape_ok && k < want.dims.size(); ++k)
      shape_ok = want.dims[k] < 0 || want.dims[k] == t.shape()[k];
    if (!want.tensor || want.dtype != t.dtype() || !shape_ok) {
      std::vector<int64_t> dims = want.dims;
      std::string declared = DTypeName(want.dtype) + " " + ShapeText(dims);
      return Status::InvalidArgument("input '" + in.name() + "': " + DescribeTensor(t) +
                                     ", the model takes " + declared);
    }
    scope.values.emplace(in.name(), std::move(it->second));
  }
  std::vector<Tensor> outs;
  PALETTIZE_RETURN_IF_ERROR(RunBlock(block, &scope, {}, &outs));
  outputs->clear();
  for (int k = 0; k < block.outputs_size(); ++k) (*outputs)[block.outputs(k)] = std::move(outs[size_t(k)]);
  return Status::OK();
}

Status Interpreter::RunBlock(const mil::Block& block, const Scope* parent, const std::vector<Tensor>& inputs,
                             std::vector<Tensor>* outputs) {
  if (depth_ >= kMaxBlockDepth)
    return Status::InvalidInput(package_.model_path() + ": blocks nested more than " +
                                std::to_string(kMaxBlockDepth) + " deep");
  if (size_t(block.inputs_size()) != inputs.size())
    return Status::InvalidInput(package_.model_path() + ": a block takes " +
                                std::to_string(block.inputs_size()) + " inputs, given " +
                                std::to_string(inputs.size()));
  Scope scope;
  scope.parent = parent;
  for (int k = 0; k < block.inputs_size(); ++k) scope.values[block.inputs(k).name()] = inputs[size_t(k)];

  // The last op of this block that reads each value; block outputs are kept to the end.
  std::unordered_map<std::string, int> last_use;
  for (int j = 0; j < block.operations_size(); ++j) {
    std::set<std::string> names;
    NamesUsed(block.operations(j), &names);
    for (const std::string& n : names) last_use[n] = j;
  }
  for (const std::string& o : block.outputs()) last_use[o] = block.operations_size();

  ++depth_;
  for (int j = 0; j < block.operations_size(); ++j) {
    const mil::Operation& op = block.operations(j);
    Status st = RunOp(op, scope);
    if (!st.ok()) {
      --depth_;
      return st;
    }
    for (const auto& o : op.outputs())
      if (!last_use.count(o.name())) scope.values.erase(o.name());  // never read
    std::set<std::string> names;
    NamesUsed(op, &names);
    for (const std::string& n : names)
      if (last_use[n] == j) scope.values.erase(n);
  }
  --depth_;
  outputs->clear();
  for (const std::string& o : block.outputs()) {
    const Tensor* t = scope.Find(o);
    if (t == nullptr)
      return Status::InvalidInput(package_.model_path() + ": block output '" + o +
                                  "' is not defined in the block");
    outputs->push_back(*t);
  }
  return Status::OK();
}

Status Interpreter::RunOp(const mil::Operation& op, Scope& scope) {
  try {
    return RunOpUnlimited(op, scope);
  } catch (const TensorLimitError& e) {  // eval/limits.h: a shape refused before allocation
    return Status::InvalidInput(model_file() + ": op '" + OpName(op) + "' (" + op.type() + "): " + e.what());
  }
}

Status Interpreter::RunOpUnlimited(const mil::Operation& op, Scope& scope) {
  if (op.type() == "const") return RunConst(op, scope);
  if (IsDecompressible(op)) return RunConstexpr(op, scope);
  OpContext ctx(*this, op, scope);
  const Kernel* kernel = registry_.Find(op.type());
  if (kernel == nullptr) return ctx.Fail("op type not supported by palettize eval");
  PALETTIZE_RETURN_IF_ERROR((*kernel)(ctx));
  for (int k = 0; k < op.outputs_size(); ++k) {
    if (!ctx.set()[size_t(k)]) return ctx.Fail("output " + std::to_string(k) + " was not computed");
    scope.values[op.outputs(k).name()] = std::move(ctx.outputs()[size_t(k)]);
  }
  return Status::OK();
}

Status Interpreter::RunConst(const mil::Operation& op, Scope& scope) {
  OpContext ctx(*this, op, scope);
  auto it = op.attributes().find("val");
  if (op.outputs_size() != 1 || it == op.attributes().end())
    return ctx.Fail("a const needs one output and a val");
  Tensor t;
  Status st = ValueToTensor(it->second, "val", &t);
  if (!st.ok()) return ctx.Fail(st.message());
  if (const_values_ != nullptr) {
    auto sub = const_values_->find(op.outputs(0).name());
    if (sub != const_values_->end()) {
      if (sub->second->dtype() != t.dtype() || sub->second->shape() != t.shape())
        return ctx.Fail("substituted value " + DescribeTensor(*sub->second) + " differs from the const's " +
                        DescribeTensor(t));
      t = *sub->second;
    }
  }
  PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(0, std::move(t), true));
  scope.values[op.outputs(0).name()] = std::move(ctx.outputs()[0]);
  return Status::OK();
}

Status Interpreter::RunConstexpr(const mil::Operation& op, Scope& scope) {
  OpContext ctx(*this, op, scope);
  DenseTensor dense;
  PALETTIZE_RETURN_IF_ERROR(constexpr_->EvalOp(op, &dense));
  std::vector<int64_t> dims(dense.shape.dims.begin(), dense.shape.dims.end());
  Tensor t(dense.shape.mil_type, dims);
  for (size_t k = 0; k < dense.v.size() && k < t.size(); ++k) t.set(k, dense.v[k]);
  PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(0, std::move(t)));
  scope.values[op.outputs(0).name()] = std::move(ctx.outputs()[0]);
  return Status::OK();
}

Status Interpreter::ValueToTensor(const mil::Value& value, const std::string& what, Tensor* out) {
  if (value.type().has_listtype() && value.has_immediatevalue() && value.immediatevalue().has_list()) {
    // A list of scalars (classify's classes) is read as a rank-1 tensor.
    const auto& items = value.immediatevalue().list().values();
    std::vector<Tensor> scalars(size_t(items.size()));
    for (int k = 0; k < items.size(); ++k) {
      PALETTIZE_RETURN_IF_ERROR(
          ValueToTensor(items[k], what + "[" + std::to_string(k) + "]", &scalars[size_t(k)]));
      if (scalars[size_t(k)].size() != 1 || scalars[size_t(k)].dtype() != scalars[0].dtype())
        return Status::InvalidInput(what + ": a list of scalars of one dtype expected");
    }
    if (scalars.empty()) return Status::InvalidInput(what + ": an empty list");
    Tensor t(scalars[0].dtype(), {int64_t(scalars.size())});
    for (size_t k = 0; k < scalars.size(); ++k) {
      if (t.is_string())
        t.s()[k] = scalars[k].s()[0];
      else
        t.set(k, scalars[k].at(0));
    }
    *out = std::move(t);
    return Status::OK();
  }
  if (!value.type().has_tensortype()) return Status::InvalidInput(what + ": not a tensor value");
  TensorShape shape;
  PALETTIZE_RETURN_IF_ERROR(ParseTensorType(value.type(), &shape).WithContext(what));
  TensorData data;
  PALETTIZE_RETURN_IF_ERROR(ReadValueData(package_, value, shape, what, &data));
  std::vector<int64_t> dims(shape.dims.begin(), shape.dims.end());
  Tensor t(shape.mil_type, dims);
  if (t.is_string()) {
    if (data.strings.size() != t.size())
      return Status::InvalidInput(what + ": string count differs from its shape");
    t.s() = data.strings;
  } else if (shape.mil_type == MT::FLOAT32) {
    // The weights' own layouts, copied without a per-element detour through double.
    std::memcpy(t.f().data(), data.data, t.size() * sizeof(float));
  } else if (shape.mil_type == MT::FLOAT16) {
    HalfBytesToFloats(data.data, t.f().data(), t.size());
  } else {
    for (size_t k = 0; k < t.size(); ++k) t.set(k, ElementAsDouble(data.data, shape.mil_type, k));
  }
  *out = std::move(t);
  return Status::OK();
}

}  // namespace palettize::eval
