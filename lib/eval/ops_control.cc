// cond and while_loop: their nested blocks run through OpContext::RunBlock and see every value
// visible to the op.
#include "eval/kernel_util.h"
#include "eval/limits.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

Status SetAll(OpContext& ctx, std::vector<Tensor>& values, const char* what) {
  if (int(values.size()) != ctx.num_outputs())
    return ctx.Fail(std::string(what) + " gives " + std::to_string(values.size()) + " values for " +
                    std::to_string(ctx.num_outputs()) + " outputs");
  for (size_t k = 0; k < values.size(); ++k)
    PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(int(k), std::move(values[k])));
  return Status::OK();
}

Status ScalarTruth(OpContext& ctx, const Tensor& t, const char* what, bool* out) {
  if (t.size() != 1 || t.is_string())
    return ctx.Fail(std::string(what) + ": " + DescribeTensor(t) + ", expected one bool");
  *out = t.at(0) != 0;
  return Status::OK();
}

// cond(pred): block 0 when pred is true, block 1 otherwise; the block takes no inputs.
Status Cond(OpContext& ctx) {
  const Tensor* pred = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ctx.Input("pred", &pred));
  bool taken = false;
  PALETTIZE_RETURN_IF_ERROR(ScalarTruth(ctx, *pred, "pred", &taken));
  if (ctx.num_blocks() != 2) return ctx.Fail(std::to_string(ctx.num_blocks()) + " blocks, expected 2");
  std::vector<Tensor> outs;
  PALETTIZE_RETURN_IF_ERROR(ctx.RunBlock(taken ? 0 : 1, {}, &outs));
  return SetAll(ctx, outs, taken ? "the true branch" : "the false branch");
}

// while_loop(loop_vars): block 0 (cond) maps the loop variables to a bool; while it is true,
// block 1 (body) maps them to their next values. The outputs are the final values.
Status WhileLoop(OpContext& ctx) {
  std::vector<const Tensor*> init;
  PALETTIZE_RETURN_IF_ERROR(ctx.Inputs("loop_vars", &init));
  if (ctx.num_blocks() != 2) return ctx.Fail(std::to_string(ctx.num_blocks()) + " blocks, expected 2");
  std::vector<Tensor> vars;
  vars.reserve(init.size());
  for (const Tensor* t : init) vars.push_back(*t);
  // A program whose condition never turns false fails instead of running forever.
  const int64_t max_iterations = CurrentEvalLimits().max_loop_iterations;
  for (int64_t it = 0;; ++it) {
    std::vector<Tensor> c;
    PALETTIZE_RETURN_IF_ERROR(ctx.RunBlock(0, vars, &c));
    bool go = false;
    if (c.size() != 1)
      return ctx.Fail("the condition block gives " + std::to_string(c.size()) + " values, expected 1");
    PALETTIZE_RETURN_IF_ERROR(ScalarTruth(ctx, c[0], "the condition block's output", &go));
    if (!go) break;
    if (it >= max_iterations) return ctx.Fail("more than " + std::to_string(max_iterations) + " iterations");
    std::vector<Tensor> next;
    PALETTIZE_RETURN_IF_ERROR(ctx.RunBlock(1, vars, &next));
    if (next.size() != vars.size())
      return ctx.Fail("the body gives " + std::to_string(next.size()) + " values for " +
                      std::to_string(vars.size()) + " loop variables");
    for (size_t k = 0; k < vars.size(); ++k)
      if (next[k].dtype() != vars[k].dtype())
        return ctx.Fail("loop variable " + std::to_string(k) + ": the body turns " + DescribeTensor(vars[k]) +
                        " into " + DescribeTensor(next[k]));
    vars = std::move(next);
  }
  return SetAll(ctx, vars, "the loop");
}

}  // namespace

void RegisterControlOps(OpRegistry& r) {
  r.Add("cond", Cond);
  r.Add("while_loop", WhileLoop);
}

}  // namespace palettize::eval
