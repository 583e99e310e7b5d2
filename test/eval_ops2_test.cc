// Kernels of the pool, norm, conv_transpose, resample, recurrent, control, attention and index
// families, each run on a small op built in memory; expected values are worked out by hand (in
// the comments) or from the op's formula.
#include <catch2/catch.hpp>

#include <cmath>

#include "MIL.pb.h"
#include "eval/interpreter.h"
#include "eval/op_context.h"
#include "package/package.h"
#include "test_util.h"

using namespace palettize;
using namespace palettize::eval;

namespace {

namespace MT = CoreML::Specification::MILSpec;

Tensor F(std::vector<int64_t> shape, std::vector<float> v) {
  Tensor t(MT::FLOAT32, std::move(shape));
  REQUIRE(v.size() == t.size());
  t.f() = std::move(v);
  return t;
}
Tensor I(std::vector<int64_t> shape, std::vector<int64_t> v, int dtype = MT::INT32) {
  Tensor t(dtype, std::move(shape));
  REQUIRE(v.size() == t.size());
  t.i() = std::move(v);
  return t;
}
Tensor I1(int64_t v) { return I({}, {v}); }
Tensor B1(bool v) { return I({}, {v ? 1 : 0}, MT::BOOL); }
Tensor F1(float v) { return F({}, {v}); }
Tensor S1(const std::string& s) {
  Tensor t(MT::STRING, {});
  t.s()[0] = s;
  return t;
}

// One op: parameters bound by name to values of an outer scope, outputs declared by type.
struct OpRun {
  Package package;
  Interpreter interp{package};
  Scope scope;
  MT::Operation op;
  std::vector<Tensor> out;
  std::string error;
  int next = 0;

  explicit OpRun(const std::string& type) {
    op.set_type(type);
    (*op.mutable_attributes())["name"]
        .mutable_immediatevalue()
        ->mutable_tensor()
        ->mutable_strings()
        ->add_values("t");
  }
  OpRun& In(const std::string& param, Tensor t) {
    const std::string name = "v" + std::to_string(next++);
    scope.values[name] = std::move(t);
    (*op.mutable_inputs())[param].add_arguments()->set_name(name);
    return *this;
  }
  OpRun& Out(int dtype, std::vector<int64_t> dims) {
    auto* o = op.add_outputs();
    o->set_name("out" + std::to_string(op.outputs_size()));
    SetTensorType(o->mutable_type(), dtype, dims);
    return *this;
  }
  bool Run() {
    OpContext ctx(interp, op, scope);
    const Kernel* k = OpRegistry::Builtin().Find(op.type());
    REQUIRE(k != nullptr);
    Status st = (*k)(ctx);
    error = st.ok() ? "" : st.message();
    if (st.ok()) out = ctx.outputs();
    return st.ok();
  }
  std::vector<float> Floats(int k = 0) const { return out[size_t(k)].f(); }
  std::vector<int64_t> Ints(int k = 0) const { return out[size_t(k)].i(); }
};

void CheckNear(const std::vector<float>& got, const std::vector<float>& want, float tol = 1e-6f) {
  REQUIRE(got.size() == want.size());
  for (size_t k = 0; k < got.size(); ++k) {
    INFO("element " << k);
    CHECK(got[k] == Approx(want[k]).margin(tol));
  }
}

float Sig(float v) { return 1.0f / (1.0f + std::exp(-v)); }

}  // namespace

TEST_CASE("eval pool: max and avg over 2x2 windows, padding counted or excluded, ceil_mode") {
  const Tensor x = F({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  OpRun mx("max_pool");
  mx.In("x", x).In("kernel_sizes", I({2}, {2, 2})).In("strides", I({2}, {1, 1})).In("pad_type", S1("valid"));
  REQUIRE(mx.Out(MT::FLOAT32, {1, 1, 2, 2}).Run());
  CheckNear(mx.Floats(), {5, 6, 8, 9});
  // Padding 1 all round, stride 2: the windows hold {1}, {2,3}, {4,7}, {5,6,8,9}.
  for (bool exclude : {true, false}) {
    OpRun avg("avg_pool");
    avg.In("x", x)
        .In("kernel_sizes", I({2}, {2, 2}))
        .In("strides", I({2}, {2, 2}))
        .In("pad_type", S1("custom"));
    avg.In("pad", I({4}, {1, 1, 1, 1})).In("exclude_padding_from_average", B1(exclude));
    REQUIRE(avg.Out(MT::FLOAT32, {1, 1, 2, 2}).Run());
    CheckNear(avg.Floats(),
              exclude ? std::vector<float>{1, 2.5f, 5.5f, 7} : std::vector<float>{0.25f, 1.25f, 2.75f, 7});
  }
  // 1-D, 5 samples, kernel 2 stride 2: floor gives 2 windows, ceil a third holding only 5.
  for (bool ceil : {false, true}) {
    OpRun p("max_pool");
    p.In("x", F({1, 1, 5}, {1, 2, 3, 4, 5})).In("kernel_sizes", I({1}, {2})).In("strides", I({1}, {2}));
    p.In("pad_type", S1("valid")).In("ceil_mode", B1(ceil));
    REQUIRE(p.Out(MT::FLOAT32, {1, 1, ceil ? 3 : 2}).Run());
    CheckNear(p.Floats(), ceil ? std::vector<float>{2, 4, 5} : std::vector<float>{2, 4});
  }
  // same: 3 samples, kernel 2, stride 1 -> total padding 1, after the input.
  OpRun same("avg_pool");
  same.In("x", F({1, 1, 3}, {1, 2, 4})).In("kernel_sizes", I({1}, {2})).In("pad_type", S1("same"));
  same.In("exclude_padding_from_average", B1(true));
  REQUIRE(same.Out(MT::FLOAT32, {1, 1, 3}).Run());
  CheckNear(same.Floats(), {1.5f, 3, 4});
  OpRun bad("max_pool");
  bad.In("x", x).In("kernel_sizes", I({2}, {2, 2})).In("pad_type", S1("bogus"));
  CHECK_FALSE(bad.Out(MT::FLOAT32, {1, 1, 2, 2}).Run());
  CHECK(bad.error == ": op 't' (max_pool): pad_type: 'bogus', expected valid, same, same_lower or custom");
}

TEST_CASE("eval norm: batch_norm, instance_norm and l2_norm") {
  OpRun bn("batch_norm");
  bn.In("x", F({1, 2, 2}, {1, 2, 3, 4})).In("mean", F({2}, {1, 2})).In("variance", F({2}, {4, 0.25f}));
  bn.In("gamma", F({2}, {2, 1})).In("beta", F({2}, {0, 1})).In("epsilon", F1(0));
  REQUIRE(bn.Out(MT::FLOAT32, {1, 2, 2}).Run());
  CheckNear(bn.Floats(), {0, 1, 3, 5});  // (x - 1) / 2 * 2 and (x - 2) / 0.5 + 1
  OpRun in("instance_norm");
  in.In("x", F({1, 1, 4}, {1, 2, 3, 4})).In("epsilon", F1(0));
  REQUIRE(in.Out(MT::FLOAT32, {1, 1, 4}).Run());
  const float sd = std::sqrt(1.25f);  // variance of 1..4 about 2.5
  CheckNear(in.Floats(), {-1.5f / sd, -0.5f / sd, 0.5f / sd, 1.5f / sd}, 1e-5f);
  OpRun l2("l2_norm");
  l2.In("x", F({2, 1, 1, 2}, {3, 4, 0, 2})).In("epsilon", F1(0));
  REQUIRE(l2.Out(MT::FLOAT32, {2, 1, 1, 2}).Run());
  CheckNear(l2.Floats(), {0.6f, 0.8f, 0, 1});
  OpRun bad("batch_norm");
  bad.In("x", F({1, 2, 2}, {1, 2, 3, 4})).In("mean", F({3}, {1, 2, 3})).In("variance", F({2}, {1, 1}));
  CHECK_FALSE(bad.Out(MT::FLOAT32, {1, 2, 2}).Run());
  CHECK(bad.error == ": op 't' (batch_norm): mean: float32 [3], expected 2 floats");
}

TEST_CASE("eval conv_transpose: strides, crop, bias, groups") {
  // [1, 2] through kernel [1, 1, 1] at stride 2: 1 at 0..2, 2 at 2..4.
  OpRun a("conv_transpose");
  a.In("x", F({1, 1, 2}, {1, 2})).In("weight", F({1, 1, 3}, {1, 1, 1})).In("strides", I({1}, {2}));
  REQUIRE(a.Out(MT::FLOAT32, {1, 1, 5}).Run());
  CheckNear(a.Floats(), {1, 1, 3, 2, 2});
  OpRun b("conv_transpose");
  b.In("x", F({1, 1, 2}, {1, 2})).In("weight", F({1, 1, 3}, {1, 1, 1})).In("strides", I({1}, {2}));
  b.In("pad_type", S1("custom")).In("pad", I({2}, {1, 1})).In("bias", F({1}, {10}));
  REQUIRE(b.Out(MT::FLOAT32, {1, 1, 3}).Run());
  CheckNear(b.Floats(), {11, 13, 12});
  // Two groups of one channel each: each output channel is its input times its kernel.
  OpRun g("conv_transpose");
  g.In("x", F({1, 2, 1, 1}, {1, 2}))
      .In("weight", F({2, 1, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}))
      .In("groups", I1(2));
  REQUIRE(g.Out(MT::FLOAT32, {1, 2, 2, 2}).Run());
  CheckNear(g.Floats(), {1, 2, 3, 4, 10, 12, 14, 16});
  // Dilation 2 spreads the taps; output_shape keeps one extra sample past the full output.
  OpRun d("conv_transpose");
  d.In("x", F({1, 1, 1}, {3})).In("weight", F({1, 1, 2}, {1, 2})).In("dilations", I({1}, {2}));
  d.In("output_shape", I({3}, {1, 1, 4}));
  REQUIRE(d.Out(MT::FLOAT32, {1, 1, 4}).Run());
  CheckNear(d.Floats(), {3, 0, 6, 0});
  OpRun bad("conv_transpose");
  bad.In("x", F({1, 3, 1, 1}, {1, 2, 3})).In("weight", F({3, 1, 1, 1}, {1, 1, 1})).In("groups", I1(2));
  CHECK_FALSE(bad.Out(MT::FLOAT32, {1, 2, 1, 1}).Run());
  CHECK(bad.error.find("groups 2 with x [1, 3, 1, 1]") != std::string::npos);
}

TEST_CASE("eval resample: the grid of each bilinear mode, nearest neighbour") {
  // Input [0, 1] along the width: each output is its source coordinate (iOS15 docs' examples).
  const Tensor x = F({1, 1, 1, 2}, {0, 1});
  struct Case {
    bool align;
    std::vector<float> want;
  };
  for (const Case& c : {Case{true, {0, 0.25f, 0.5f, 0.75f, 1}}, Case{false, {0, 0.1f, 0.5f, 0.9f, 1}}}) {
    OpRun u("upsample_bilinear");
    u.In("x", x).In("scale_factor_width", F1(2.5f)).In("align_corners", B1(c.align));
    REQUIRE(u.Out(MT::FLOAT32, {1, 1, 1, 5}).Run());
    CheckNear(u.Floats(), c.want);
  }
  struct Mode {
    const char* name;
    std::vector<float> want;
  };
  for (const Mode& m :
       {Mode{"DEFAULT", {0, 0.4f, 0.8f, 1, 1}}, Mode{"OFFSET_CORNERS", {0.1f, 0.3f, 0.5f, 0.7f, 0.9f}},
        Mode{"STRICT_ALIGN_CORNERS", {0, 0.25f, 0.5f, 0.75f, 1}},
        Mode{"UNALIGN_CORNERS", {0, 0.1f, 0.5f, 0.9f, 1}}}) {
    INFO(m.name);
    OpRun r("resize_bilinear");
    r.In("x", x)
        .In("target_size_height", I1(1))
        .In("target_size_width", I1(5))
        .In("sampling_mode", S1(m.name));
    REQUIRE(r.Out(MT::FLOAT32, {1, 1, 1, 5}).Run());
    CheckNear(r.Floats(), m.want);
  }
  OpRun n("upsample_nearest_neighbor");
  n.In("x", F({1, 2, 2}, {1, 2, 3, 4})).In("scale_factor_height", F1(1)).In("scale_factor_width", F1(2));
  REQUIRE(n.Out(MT::FLOAT32, {1, 2, 4}).Run());
  CheckNear(n.Floats(), {1, 1, 2, 2, 3, 3, 4, 4});
  OpRun bad("resize_bilinear");
  bad.In("x", x).In("target_size_width", I1(3)).In("sampling_mode", S1("NEAREST"));
  CHECK_FALSE(bad.Out(MT::FLOAT32, {1, 1, 1, 3}).Run());
  CHECK(bad.error.find("sampling_mode: 'NEAREST', expected DEFAULT") != std::string::npos);
}

TEST_CASE("eval lstm: gates, bidirectional alignment, final states") {
  // H = I = 1; only the cell gate sees x, so i = f = o = 1/2 and z = tanh(x):
  // c_t = c_{t-1} / 2 + tanh(x_t) / 2, h_t = tanh(c_t) / 2.
  auto run = [](const std::string& direction, int dirs, bool seq) {
    auto r = std::make_unique<OpRun>("lstm");
    r->In("x", F({2, 1, 1}, {1, 2}));
    r->In("initial_h", F({1, int64_t(dirs)}, std::vector<float>(size_t(dirs), 0)));
    r->In("initial_c", F({1, int64_t(dirs)}, std::vector<float>(size_t(dirs), 0)));
    r->In("weight_ih", F({4, 1}, {0, 0, 0, 1})).In("weight_hh", F({4, 1}, {0, 0, 0, 0}));
    if (dirs == 2)
      r->In("weight_ih_back", F({4, 1}, {0, 0, 0, 1})).In("weight_hh_back", F({4, 1}, {0, 0, 0, 0}));
    r->In("direction", S1(direction)).In("output_sequence", B1(seq));
    r->Out(MT::FLOAT32, {seq ? 2 : 1, 1, dirs}).Out(MT::FLOAT32, {1, dirs}).Out(MT::FLOAT32, {1, dirs});
    REQUIRE(r->Run());
    return r;
  };
  const float c1 = 0.5f * std::tanh(1.0f), c2 = 0.5f * c1 + 0.5f * std::tanh(2.0f);
  const float b1 = 0.5f * std::tanh(2.0f), b2 = 0.5f * b1 + 0.5f * std::tanh(1.0f);  // x read backwards
  auto h = [](float c) { return 0.5f * std::tanh(c); };
  auto fwd = run("forward", 1, true);
  CheckNear(fwd->Floats(0), {h(c1), h(c2)});
  CheckNear(fwd->Floats(2), {c2});
  auto rev = run("reverse", 1, true);
  CheckNear(rev->Floats(0), {h(b1), h(b2)});  // in processing order
  auto bi = run("bidirectional", 2, true);
  CheckNear(bi->Floats(0), {h(c1), h(b2), h(c2), h(b1)});  // backward half aligned with the input
  CheckNear(bi->Floats(1), {h(c2), h(b2)});
  auto last = run("bidirectional", 2, false);
  CheckNear(last->Floats(0), {h(c2), h(b2)});
}

TEST_CASE("eval gru and rnn: reset gate placement, reverse") {
  // H = I = 1, weight_ih only on the output gate, R_o = 1, bias b_o = 1: r = z = 1/2, and with
  // x = 1, h0 = 1 the output gate is tanh(1 + R_o (r h) + b_o) = tanh(2.5), or with reset_after
  // tanh(1 + r (R_o h + b_o)) = tanh(2); h = o / 2 + h0 / 2.
  for (bool reset_after : {false, true}) {
    OpRun g("gru");
    g.In("x", F({1, 1, 1}, {1})).In("initial_h", F({1, 1}, {1})).In("weight_ih", F({3, 1}, {0, 1, 0}));
    g.In("weight_hh", F({3, 1}, {0, 1, 0})).In("bias", F({3}, {0, 1, 0})).In("reset_after", B1(reset_after));
    REQUIRE(g.Out(MT::FLOAT32, {1, 1, 1}).Out(MT::FLOAT32, {1, 1}).Run());
    const float o = std::tanh(reset_after ? 2.0f : 2.5f);
    CheckNear(g.Floats(0), {0.5f * o + 0.5f});
    CheckNear(g.Floats(1), {0.5f * o + 0.5f});
  }
  // rnn: h = tanh(x + h / 2).
  for (bool reverse : {false, true}) {
    OpRun r("rnn");
    r.In("x", F({2, 1, 1}, {1, 2})).In("initial_h", F({1, 1}, {0})).In("weight_ih", F({1, 1}, {1}));
    r.In("weight_hh", F({1, 1}, {0.5f})).In("direction", S1(reverse ? "reverse" : "forward"));
    r.In("output_sequence", B1(true));
    REQUIRE(r.Out(MT::FLOAT32, {2, 1, 1}).Out(MT::FLOAT32, {1, 1}).Run());
    const float a = std::tanh(reverse ? 2.0f : 1.0f), b = std::tanh((reverse ? 1.0f : 2.0f) + 0.5f * a);
    CheckNear(r.Floats(0), {a, b});
    CheckNear(r.Floats(1), {b});
  }
  OpRun bad("gru");
  bad.In("x", F({1, 1, 1}, {1})).In("initial_h", F({1, 1}, {1})).In("weight_ih", F({3, 1}, {0, 1, 0}));
  bad.In("weight_hh", F({3, 1}, {0, 1, 0})).In("direction", S1("bidirectional"));
  CHECK_FALSE(bad.Out(MT::FLOAT32, {1, 1, 1}).Out(MT::FLOAT32, {1, 1}).Run());
  CHECK(bad.error == ": op 't' (gru): direction: 'bidirectional', expected forward or reverse");
  CHECK(Sig(0) == 0.5f);
}

namespace {

// Adds to `block` the op `type`(params bound by name) -> one output `out` of `dtype`, scalar.
void AddOp(MT::Block* block, const std::string& type,
           const std::vector<std::pair<std::string, std::string>>& params, const std::string& out,
           int dtype) {
  MT::Operation* op = block->add_operations();
  op->set_type(type);
  for (const auto& [p, name] : params) (*op->mutable_inputs())[p].add_arguments()->set_name(name);
  auto* o = op->add_outputs();
  o->set_name(out);
  SetTensorType(o->mutable_type(), dtype, {});
}

}  // namespace

TEST_CASE("eval control flow: while_loop counts, cond picks a branch") {
  // while (i < limit) { i = i + step; s = s * 2 }, from i = 0, s = 1, limit 5, step 2.
  OpRun w("while_loop");
  w.In("loop_vars", I1(0)).In("loop_vars", F1(1));
  w.scope.values["limit"] = I1(5);
  w.scope.values["step"] = I1(2);
  w.scope.values["two"] = F1(2);
  MT::Block* cond = w.op.add_blocks();
  for (const char* n : {"i", "s"}) cond->add_inputs()->set_name(n);
  AddOp(cond, "less", {{"x", "i"}, {"y", "limit"}}, "go", MT::BOOL);
  cond->add_outputs("go");
  MT::Block* body = w.op.add_blocks();
  for (const char* n : {"i2", "s2"}) body->add_inputs()->set_name(n);
  AddOp(body, "add", {{"x", "i2"}, {"y", "step"}}, "i3", MT::INT32);
  AddOp(body, "mul", {{"x", "s2"}, {"y", "two"}}, "s3", MT::FLOAT32);
  body->add_outputs("i3");
  body->add_outputs("s3");
  REQUIRE(w.Out(MT::INT32, {}).Out(MT::FLOAT32, {}).Run());
  CHECK(w.Ints(0) == std::vector<int64_t>{6});
  CHECK(w.Floats(1) == std::vector<float>{8});
  for (bool pred : {true, false}) {
    OpRun c("cond");
    c.In("pred", B1(pred));
    c.scope.values["a"] = F1(3);
    c.scope.values["b"] = F1(4);
    for (const char* src : {"a", "b"}) {
      MT::Block* blk = c.op.add_blocks();
      AddOp(blk, "identity", {{"x", src}}, std::string(src) + "_out", MT::FLOAT32);
      blk->add_outputs(std::string(src) + "_out");
    }
    REQUIRE(c.Out(MT::FLOAT32, {}).Run());
    CHECK(c.Floats() == std::vector<float>{pred ? 3.0f : 4.0f});
  }
  OpRun bad("cond");
  bad.In("pred", I({2}, {1, 0}, MT::BOOL));
  bad.op.add_blocks();
  bad.op.add_blocks();
  CHECK_FALSE(bad.Run());
  CHECK(bad.error == ": op 't' (cond): pred: bool [2], expected one bool");
}

TEST_CASE("eval scaled_dot_product_attention and einsum") {
  // q = [1, 0] against keys [1, 0] and [0, 1]: weights p, 1 - p with p = e^s / (e^s + 1),
  // s = 1 / sqrt(2); values 1 and 3.
  const float s = 1.0f / std::sqrt(2.0f), p = std::exp(s) / (std::exp(s) + 1);
  auto attn = [](std::unique_ptr<Tensor> mask) {
    auto r = std::make_unique<OpRun>("scaled_dot_product_attention");
    r->In("query", F({1, 1, 2}, {1, 0}))
        .In("key", F({1, 2, 2}, {1, 0, 0, 1}))
        .In("value", F({1, 2, 1}, {1, 3}));
    if (mask) r->In("attn_mask", *mask);
    REQUIRE(r->Out(MT::FLOAT32, {1, 1, 1}).Run());
    return r->Floats();
  };
  CheckNear(attn(nullptr), {p * 1 + (1 - p) * 3}, 1e-5f);
  CheckNear(attn(std::make_unique<Tensor>(I({1, 2}, {1, 0}, MT::BOOL))), {1});
  CheckNear(attn(std::make_unique<Tensor>(F({2}, {-s, 0}))), {0.5f * 1 + 0.5f * 3}, 1e-5f);
  OpRun mm("einsum");
  mm.In("values", F({2, 2}, {1, 2, 3, 4}))
      .In("values", F({2, 2}, {5, 6, 7, 8}))
      .In("equation", S1("ij,jk->ik"));
  REQUIRE(mm.Out(MT::FLOAT32, {2, 2}).Run());
  CheckNear(mm.Floats(), {19, 22, 43, 50});
  // The op's documented layout: [C, H, W1] x [W1, H, W2] -> [C, H, W2], H broadcast from 1.
  OpRun chw("einsum");
  chw.In("values", F({1, 2, 2}, {1, 2, 3, 4}))
      .In("values", F({2, 1, 1}, {10, 100}))
      .In("equation", S1("chw,whr->chr"));
  REQUIRE(chw.Out(MT::FLOAT32, {1, 2, 1}).Run());
  CheckNear(chw.Floats(), {210, 430});
  OpRun bad("einsum");
  bad.In("values", F({2, 2}, {1, 2, 3, 4}))
      .In("values", F({3, 2}, {1, 2, 3, 4, 5, 6}))
      .In("equation", S1("ij,jk->ik"));
  CHECK_FALSE(bad.Out(MT::FLOAT32, {2, 2}).Run());
  CHECK(bad.error == ": op 't' (einsum): equation 'ij,jk->ik': letter 'j' has sizes 2 and 3");
}

TEST_CASE("eval index ops: gather_nd, scatter, scatter_along_axis, cumsum, topk, argmax, argmin") {
  const Tensor x = F({2, 2}, {1, 2, 3, 4});
  OpRun g("gather_nd");
  g.In("x", x).In("indices", I({2, 2}, {1, 0, 0, -1}));
  REQUIRE(g.Out(MT::FLOAT32, {2}).Run());
  CheckNear(g.Floats(), {3, 2});
  OpRun gb("gather_nd");
  gb.In("x", x).In("indices", I({2, 1}, {1, 0})).In("batch_dims", I1(1));
  REQUIRE(gb.Out(MT::FLOAT32, {2}).Run());
  CheckNear(gb.Floats(), {2, 3});
  // coremltools' documented example, mode add; then update.
  for (const char* mode : {"add", "update"}) {
    OpRun sc("scatter");
    sc.In("data", F({2, 3}, {1, 2, 3, 4, 5, 6})).In("indices", I({2}, {1, 0}));
    sc.In("updates", F({2, 3}, {5, 6, 7, 8, 9, 10})).In("mode", S1(mode));
    REQUIRE(sc.Out(MT::FLOAT32, {2, 3}).Run());
    CheckNear(sc.Floats(), std::string(mode) == "add" ? std::vector<float>{9, 11, 13, 9, 11, 13}
                                                      : std::vector<float>{8, 9, 10, 5, 6, 7});
  }
  OpRun sa("scatter_along_axis");
  sa.In("data", F({2, 2}, {0, 0, 0, 0})).In("indices", I({2, 2}, {1, 0, 0, 1})).In("updates", x);
  sa.In("axis", I1(1)).In("mode", S1("update"));
  REQUIRE(sa.Out(MT::FLOAT32, {2, 2}).Run());
  CheckNear(sa.Floats(), {2, 1, 3, 4});
  struct Cum {
    bool exclusive, reverse;
    std::vector<float> want;
  };
  for (const Cum& c : {Cum{false, false, {1, 3, 6}}, Cum{true, false, {0, 1, 3}}, Cum{false, true, {6, 5, 3}},
                       Cum{true, true, {5, 3, 0}}}) {
    OpRun cs("cumsum");
    cs.In("x", F({3}, {1, 2, 3})).In("exclusive", B1(c.exclusive)).In("reverse", B1(c.reverse));
    REQUIRE(cs.Out(MT::FLOAT32, {3}).Run());
    CheckNear(cs.Floats(), c.want);
  }
  auto topk = [](int64_t k, bool ascending, bool sort) {
    auto r = std::make_unique<OpRun>("topk");
    r->In("x", F({4}, {1, 3, 2, 3})).In("k", I1(k)).In("ascending", B1(ascending)).In("sort", B1(sort));
    REQUIRE(r->Out(MT::FLOAT32, {k}).Out(MT::INT32, {k}).Run());
    return r;
  };
  auto t1 = topk(2, false, true);
  CheckNear(t1->Floats(0), {3, 3});
  CHECK(t1->Ints(1) == std::vector<int64_t>{1, 3});  // ties: the lower index first
  auto t2 = topk(2, true, true);
  CheckNear(t2->Floats(0), {1, 2});
  CHECK(t2->Ints(1) == std::vector<int64_t>{0, 2});
  auto t3 = topk(3, false, false);
  CHECK(t3->Ints(1) == std::vector<int64_t>{1, 2, 3});  // unsorted: in axis order
  for (bool max : {true, false}) {
    OpRun a(max ? "reduce_argmax" : "reduce_argmin");
    a.In("x", F({2, 3}, {1, 3, 3, 2, 0, 1})).In("axis", I1(-1));
    REQUIRE(a.Out(MT::INT32, {2}).Run());
    CHECK(a.Ints() == (max ? std::vector<int64_t>{1, 0} : std::vector<int64_t>{0, 1}));
  }
  OpRun bad("scatter");
  bad.In("data", F({2}, {0, 0})).In("indices", I({1}, {2})).In("updates", F({1}, {1}));
  CHECK_FALSE(bad.Out(MT::FLOAT32, {2}).Run());
  CHECK(bad.error == ": op 't' (scatter): index 2 out of range for an axis of 2");
  OpRun badk("topk");
  badk.In("x", F({4}, {1, 3, 2, 3})).In("k", I1(5));
  CHECK_FALSE(badk.Out(MT::FLOAT32, {5}).Out(MT::INT32, {5}).Run());
  CHECK(badk.error == ": op 't' (topk): k: 5, expected 1 to 4 (axis 0)");
}

TEST_CASE("eval crop_resize: Core ML's values, pad_value, box modes, iOS17 boxes and bad boxes") {
  // x is 1..16 in a 4x4 plane: value(y, x) = 1 + 4y + x, so a bilinear sample is that formula.
  std::vector<float> v(16);
  for (size_t k = 0; k < 16; ++k) v[k] = float(k + 1);
  const Tensor x = F({1, 1, 4, 4}, v);
  // coremltools' TestCropResize (the values Core ML gives): box rows/cols 1..2, ALIGN_CORNERS.
  OpRun a("crop_resize");
  a.In("x", x)
      .In("roi", F({1, 1, 4, 1, 1}, {1, 1, 2, 2}))
      .In("target_height", I1(2))
      .In("target_width", I1(2));
  a.In("sampling_mode", S1("ALIGN_CORNERS"));
  REQUIRE(a.Out(MT::FLOAT32, {1, 1, 1, 2, 2}).Run());
  CheckNear(a.Floats(), {6, 7, 10, 11});
  // Normalized, image index first, partly outside the image (iOS16 pad_value): rows 0.3..3.9,
  // columns 0.9..3.0; row 3.9 lies below the last row.
  OpRun p("crop_resize");
  p.In("x", x).In("roi", F({1, 1, 5, 1, 1}, {0, 0.1f, 0.3f, 1.3f, 1})).In("target_height", I1(2));
  p.In("target_width", I1(2)).In("normalized_coordinates", B1(true)).In("sampling_mode", S1("ALIGN_CORNERS"));
  p.In("pad_value", F1(-7));
  REQUIRE(p.Out(MT::FLOAT32, {1, 1, 1, 2, 2}).Run());
  CheckNear(p.Floats(), {3.1f, 5.2f, -7, -7}, 1e-5f);
  // iOS17: boxes [N, 4] centre-size width first, box_indices; one target point: the centre.
  OpRun c("crop_resize");
  c.In("x", F({2, 1, 4, 4}, [&] {
         std::vector<float> two = v;
         for (float f : v) two.push_back(100 + f);
         return two;
       }()));
  c.In("boxes", F({2, 4}, {1, 2, 2, 2, 2.5f, 0.5f, 1, 1})).In("box_indices", I({2}, {1, 0}));
  c.In("box_coordinate_mode", S1("CENTER_SIZE_WIDTH_FIRST")).In("sampling_mode", S1("ALIGN_CORNERS"));
  REQUIRE(c.Out(MT::FLOAT32, {2, 1, 1, 1}).Run());
  CheckNear(c.Floats(), {100 + 1 + 4 * 2 + 1, 1 + 4 * 0.5f + 2.5f}, 1e-5f);
  // Bad image indices and modes are one line each.
  OpRun bad_index("crop_resize");
  bad_index.In("x", x).In("roi", F({1, 1, 5, 1, 1}, {1, 0, 0, 1, 1}));
  CHECK_FALSE(bad_index.Out(MT::FLOAT32, {1, 1, 1, 1, 1}).Run());
  CHECK(bad_index.error.find("roi: image index 1.000000 is not in [0, 1)") != std::string::npos);
  OpRun bad_mode("crop_resize");
  bad_mode.In("x", x).In("boxes", F({1, 4}, {0, 0, 1, 1})).In("box_coordinate_mode", S1("CORNERS"));
  CHECK_FALSE(bad_mode.Out(MT::FLOAT32, {1, 1, 1, 1}).Run());
  CHECK(bad_mode.error.find("box_coordinate_mode: 'CORNERS', expected CORNERS_HEIGHT_FIRST") !=
        std::string::npos);
  OpRun bad_roi("crop_resize");
  bad_roi.In("x", x).In("roi", F({1, 4}, {0, 0, 1, 1}));
  CHECK_FALSE(bad_roi.Out(MT::FLOAT32, {1, 1, 1, 1, 1}).Run());
  CHECK(bad_roi.error.find("roi: float32 [1, 4], expected float [N, 1, 4 or 5, 1, 1]") != std::string::npos);
}
