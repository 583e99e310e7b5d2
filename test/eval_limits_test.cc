// The evaluator's limits (eval/limits.h): shapes refused before allocation, as a Status naming the
// op when an op asks for them; a while_loop stopped after max_loop_iterations.
#include <catch2/catch.hpp>

#include "MIL.pb.h"
#include "eval/input_gen.h"
#include "eval/interpreter.h"
#include "eval/limits.h"
#include "package/package.h"

using namespace palettize;
using namespace palettize::eval;

namespace {

namespace MT = CoreML::Specification::MILSpec;

// Restores the default limits when a test ends.
struct LimitsGuard {
  EvalLimits saved = CurrentEvalLimits();
  ~LimitsGuard() { SetEvalLimits(saved); }
};

Tensor I1(int64_t v, int dtype = MT::INT32) {
  Tensor t(dtype, {});
  t.i()[0] = v;
  return t;
}

MT::Operation* AddOp(MT::Block* block, const std::string& type, const std::string& out, int dtype, int rank) {
  MT::Operation* op = block->add_operations();
  op->set_type(type);
  (*op->mutable_attributes())["name"]
      .mutable_immediatevalue()
      ->mutable_tensor()
      ->mutable_strings()
      ->add_values(out + "_op");
  auto* o = op->add_outputs();
  o->set_name(out);
  auto* tt = o->mutable_type()->mutable_tensortype();
  tt->set_datatype(MT::DataType(dtype));
  tt->set_rank(rank);
  for (int k = 0; k < rank; ++k) tt->add_dimensions()->mutable_unknown();
  return op;
}

void Bind(MT::Operation* op, const std::string& param, const std::string& name) {
  (*op->mutable_inputs())[param].add_arguments()->set_name(name);
}

}  // namespace

TEST_CASE("eval limits: CheckTensorShape refuses negative dimensions and too many elements") {
  LimitsGuard guard;
  EvalLimits limits;
  limits.max_tensor_elements = 1000;
  SetEvalLimits(limits);
  CHECK_NOTHROW(CheckTensorShape({10, 100}));
  CHECK_NOTHROW(CheckTensorShape({0, int64_t(1) << 62, int64_t(1) << 62}));  // no elements
  CHECK_NOTHROW(CheckTensorShape({}));
  CHECK_THROWS_WITH(CheckTensorShape({10, 101}),
                    "a tensor of shape [10, 101]: more than 1000 elements (the evaluator's limit)");
  CHECK_THROWS_WITH(CheckTensorShape({int64_t(1) << 40, int64_t(1) << 40}),
                    Catch::Contains("more than 1000 elements"));  // the product would overflow
  CHECK_THROWS_WITH(CheckTensorShape({3, -1}), "a tensor of shape [3, -1]: negative dimension");
  CHECK_THROWS_AS(Tensor(MT::FLOAT32, {2000}), TensorLimitError);
}

TEST_CASE("eval limits: an op asking for a tensor past the limit fails with its name, nothing allocated") {
  // The default limit (2^30 elements): fill of [2^20, 2^20] would need 4 TiB.
  Package package;
  Interpreter interp(package);
  Scope outer;
  Tensor shape(MT::INT32, {2});
  shape.i() = {int64_t(1) << 20, int64_t(1) << 20};
  outer.values["shape"] = shape;
  MT::Block block;
  Bind(AddOp(&block, "fill", "big", MT::FLOAT32, 2), "shape", "shape");
  block.add_outputs("big");
  std::vector<Tensor> outs;
  const Status st = interp.RunBlock(block, &outer, {}, &outs);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() ==
        ": op 'big_op' (fill): a tensor of shape [1048576, 1048576]: more than 1073741824 elements (the "
        "evaluator's limit)");
}

TEST_CASE("eval limits: a while_loop stops after max_loop_iterations") {
  LimitsGuard guard;
  EvalLimits limits;
  limits.max_loop_iterations = 50;
  SetEvalLimits(limits);
  Package package;
  Interpreter interp(package);
  Scope outer;
  outer.values["i0"] = I1(0);
  outer.values["one"] = I1(1);
  for (int64_t stop : {40, 1000}) {  // the loop runs while i < stop
    outer.values["stop"] = I1(stop);
    MT::Block block;
    MT::Operation* loop = AddOp(&block, "while_loop", "final", MT::INT32, 0);
    Bind(loop, "loop_vars", "i0");
    MT::Block* cond = loop->add_blocks();
    cond->add_inputs()->set_name("i");
    MT::Operation* less = AddOp(cond, "less", "go", MT::BOOL, 0);
    Bind(less, "x", "i");
    Bind(less, "y", "stop");
    cond->add_outputs("go");
    MT::Block* body = loop->add_blocks();
    body->add_inputs()->set_name("j");
    MT::Operation* add = AddOp(body, "add", "next", MT::INT32, 0);
    Bind(add, "x", "j");
    Bind(add, "y", "one");
    body->add_outputs("next");
    block.add_outputs("final");
    std::vector<Tensor> outs;
    const Status st = interp.RunBlock(block, &outer, {}, &outs);
    if (stop == 40) {
      REQUIRE(st.ok());
      CHECK(outs[0].i()[0] == 40);
    } else {
      REQUIRE_FALSE(st.ok());
      CHECK(st.message() == ": op 'final_op' (while_loop): more than 50 iterations");
    }
  }
}

TEST_CASE("eval limits: a generated input past the limit is refused before it is made") {
  LimitsGuard guard;
  EvalLimits limits;
  limits.max_tensor_elements = 100;
  SetEvalLimits(limits);
  MT::ValueType type;
  auto* tt = type.mutable_tensortype();
  tt->set_datatype(MT::FLOAT32);
  tt->set_rank(2);
  tt->add_dimensions()->mutable_constant()->set_size(10);
  tt->add_dimensions()->mutable_constant()->set_size(11);
  Tensor t;
  const Status st = GenerateInput("x", type, 0, &t);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() ==
        "input 'x': a tensor of shape [10, 11]: more than 100 elements (the evaluator's limit)");
}
