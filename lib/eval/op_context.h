// What a kernel sees of the op it runs: its parameters by name, its declared output types, where
// its outputs go, and its nested blocks.
//
// HOW TO ADD AN OP
//   1. Write the kernel in the file of its family (ops_elementwise.cc, ops_activation.cc,
//      ops_linear.cc, ops_shape.cc, ops_reduce.cc, ...; a new family gets a new ops_<family>.cc)
//      as a function `Status Kernel(OpContext& ctx)`. Read parameters with the getters below
//      (their names are the MIL op's input names, coremltools/converters/mil/mil/ops/defs/iOS*/),
//      compute in float (int64 for integer dtypes), and set every output with SetOutput, which
//      rounds float16 outputs and checks them against the declared types. Report a bad parameter
//      with `return ctx.Fail("...")`: one line, the op and model are prefixed.
//   2. Register it in that file's Register<Family>Ops(OpRegistry&): `r.Add("op_type", Kernel);`.
//   3. A new family file also adds its Register<Family>Ops to the one list, op_registry.cc
//      (its declaration and its call); nothing else changes.
//   Worked example, `relu6` (ops_activation.cc):
//
//     Status Relu6(OpContext& ctx) {
//       const Tensor* x = nullptr;
//       PALETTIZE_RETURN_IF_ERROR(ctx.Input("x", &x));
//       if (!x->is_float()) return ctx.Fail("x: " + DescribeTensor(*x) + ", expected a float tensor");
//       Tensor y(x->dtype(), x->shape());
//       for (size_t k = 0; k < x->size(); ++k) y.f()[k] = std::min(std::max(x->f()[k], 0.0f), 6.0f);
//       return ctx.SetOutput(0, std::move(y));
//     }
//     void RegisterActivationOps(OpRegistry& r) { r.Add("relu6", Relu6); ... }
//
//   Tests: a Catch2 case in test/eval_ops_test.cc (a program built in memory), and an op that
//   converters emit belongs in a converted model of test/eval/.
//
// Threads: kernels may use tbb::parallel_for, but every output element must be computed by one
// thread in a fixed order (no parallel reductions into one value), so results do not depend on
// the thread count.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eval/tensor.h"
#include "mil/weights.h"
#include "palettize/status.h"

namespace palettize::eval {

class Interpreter;
struct Scope;

// An output's declared type: dtype, and each dimension (-1 where the program leaves it unknown).
// A non-tensor output (list, tuple, dictionary) has dtype 0 and `tensor` false.
struct DeclaredType {
  bool tensor = false;
  int dtype = 0;
  std::vector<int64_t> dims;
};
DeclaredType ParseDeclaredType(const mil::ValueType& type);

class OpContext {
 public:
  OpContext(Interpreter& interp, const mil::Operation& op, Scope& scope);
  ~OpContext();
  OpContext(const OpContext&) = delete;
  OpContext& operator=(const OpContext&) = delete;

  const std::string& type() const;
  const std::string& name() const { return name_; }

  // --- parameters, by their MIL name ---
  bool Has(const std::string& param) const;
  // The tensor bound to `param` (an earlier op's output, a block input or an immediate value).
  // The pointer stays valid while the op runs.
  Status Input(const std::string& param, const Tensor** out);
  // As Input, but an absent parameter sets *out to nullptr.
  Status OptionalInput(const std::string& param, const Tensor** out);
  // A tuple parameter (concat's `values`, stack's `values`): every tensor bound, in order.
  Status Inputs(const std::string& param, std::vector<const Tensor*>* out);
  // Scalar parameters: a tensor of one element; Int and Bool need an integer or bool dtype,
  // Float any numeric one, String a string. The *Or forms give `dflt` when `param` is absent.
  Status Int(const std::string& param, int64_t* out);
  Status IntOr(const std::string& param, int64_t dflt, int64_t* out);
  Status Float(const std::string& param, double* out);
  Status FloatOr(const std::string& param, double dflt, double* out);
  Status Bool(const std::string& param, bool* out);
  Status BoolOr(const std::string& param, bool dflt, bool* out);
  Status String(const std::string& param, std::string* out);
  Status StringOr(const std::string& param, const std::string& dflt, std::string* out);
  // An integer tensor of rank 0 or 1, as a list (axes, shapes, perms, begin/end).
  Status Ints(const std::string& param, std::vector<int64_t>* out);
  Status IntsOr(const std::string& param, const std::vector<int64_t>& dflt, std::vector<int64_t>* out);

  // --- outputs ---
  int num_outputs() const;
  const DeclaredType& output_type(int index) const { return declared_[size_t(index)]; }
  // Sets output `index`. A float output is rounded to its dtype (float16: the precision model,
  // tensor.h). Its dtype must be the declared one and its shape agree with every known declared
  // dimension; otherwise the op fails. Call once per output. `representable`: every value is
  // known to be of the dtype already (a const read from its own dtype's data), so the rounding
  // pass, a large share of a run on the weights of an fp16 model, is skipped.
  Status SetOutput(int index, Tensor value, bool representable = false);

  // --- nested blocks (cond, while_loop) ---
  int num_blocks() const;
  // Runs nested block `index` with `inputs` bound to its inputs, in order; it sees every value
  // visible to this op. *outputs are its outputs, in order.
  Status RunBlock(int index, const std::vector<Tensor>& inputs, std::vector<Tensor>* outputs);

  // InvalidInput "<model file>: op '<name>' (<type>): <message>".
  Status Fail(const std::string& message) const;

  // Filled by SetOutput; the interpreter moves them out.
  std::vector<Tensor>& outputs() { return outputs_; }
  std::vector<bool>& set() { return set_; }

 private:
  Status Binding(const std::string& param, size_t index, const Tensor** out);
  Status Scalar(const std::string& param, const Tensor** out);

  Interpreter& interp_;
  const mil::Operation& op_;
  Scope& scope_;
  std::string name_;
  std::vector<DeclaredType> declared_;
  std::vector<Tensor> outputs_;
  std::vector<bool> set_;
  std::vector<std::unique_ptr<Tensor>> immediates_;  // parameters bound to immediate values
};

}  // namespace palettize::eval
