// lstm, gru and rnn: x [S, B, I], one layer, as MIL defines them (iOS15 recurrent.py; iOS18
// adds gru's reset_after and input_bias). The input projections of every step come from one GEMM;
// each step then multiplies the hidden state by weight_hh. A "reverse" layer reads x from the
// last step to the first and writes its outputs in that (processing) order, as coremltools'
// reference does; a bidirectional lstm writes the backward half aligned with the input steps.
#include <cmath>

#include "eval/gemm.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

using Act = float (*)(float);

Status ActivationByName(OpContext& ctx, const std::string& param, const std::string& dflt, Act* out) {
  std::string name;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr(param, dflt, &name));
  if (name == "sigmoid")
    *out = [](float v) { return 1.0f / (1.0f + std::exp(-v)); };
  else if (name == "tanh" || name == "scaled_tanh")  // scaled_tanh with its defaults alpha = beta = 1
    *out = [](float v) { return std::tanh(v); };
  else if (name == "relu")
    *out = [](float v) { return v > 0 ? v : 0.0f; };
  else if (name == "hard_sigmoid")
    *out = [](float v) { return std::min(std::max(0.2f * v + 0.5f, 0.0f), 1.0f); };
  else if (name == "linear")
    *out = [](float v) { return v; };
  else
    return ctx.Fail(param + ": '" + name +
                    "', expected sigmoid, tanh, scaled_tanh, relu, hard_sigmoid or linear");
  return Status::OK();
}

// A float parameter of exactly `count` values, or zeros when optional and absent.
Status Vector(OpContext& ctx, const std::string& param, size_t count, bool required,
              std::vector<float>* out) {
  const Tensor* t = nullptr;
  PALETTIZE_RETURN_IF_ERROR(required ? ctx.Input(param, &t) : ctx.OptionalInput(param, &t));
  if (t == nullptr) {
    out->assign(count, 0.0f);
    return Status::OK();
  }
  if (!t->is_float() || t->size() != count)
    return ctx.Fail(param + ": " + DescribeTensor(*t) + ", expected " + std::to_string(count) + " floats");
  *out = t->f();
  return Status::OK();
}

// The shared shape checks: x [S, B, I], and the number of directions' hidden size H from
// weight_hh [G*H, H].
struct Dims {
  int64_t s = 0, b = 0, i = 0, h = 0;
};

Status ReadDims(OpContext& ctx, const Tensor& x, int gates, Dims* d) {
  const Tensor* whh = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "weight_hh", &whh));
  if (x.rank() != 3) return ctx.Fail("x: " + DescribeTensor(x) + ", expected [S, B, I]");
  if (whh->rank() != 2 || whh->dim(0) != gates * whh->dim(1))
    return ctx.Fail("weight_hh: " + DescribeTensor(*whh) + ", expected [" + std::to_string(gates) + "*H, H]");
  *d = {x.dim(0), x.dim(1), x.dim(2), whh->dim(1)};
  return Status::OK();
}

// x_t W^T for every step: [S * B, G*H], steps in processing order (reversed for `reverse`).
std::vector<float> InputProjection(const Tensor& x, const std::vector<float>& w, const Dims& d, int gates,
                                   bool reverse) {
  std::vector<float> proj(size_t(d.s * d.b * gates * d.h));
  Gemm(x.f().data(), w.data(), proj.data(), d.s * d.b, gates * d.h, d.i, false, true);
  if (reverse) {
    const size_t step = size_t(d.b * gates * d.h);
    for (int64_t t = 0; t < d.s / 2; ++t)
      std::swap_ranges(proj.begin() + long(size_t(t) * step), proj.begin() + long(size_t(t + 1) * step),
                       proj.begin() + long(size_t(d.s - 1 - t) * step));
  }
  return proj;
}

struct LstmDirection {
  std::vector<float> wih, whh, bias, peep;
};

// Runs one lstm direction from h, c ([B, H] each, updated); seq gets h after each processed step.
void RunLstm(const Tensor& x, const Dims& d, const LstmDirection& p, bool reverse, Act ra, Act ca, Act act,
             bool has_clip, float clip, std::vector<float>* h, std::vector<float>* c,
             std::vector<float>* seq) {
  const int64_t H = d.h, G = 4 * H;
  const std::vector<float> proj = InputProjection(x, p.wih, d, 4, reverse);
  std::vector<float> hp(size_t(d.b * G));
  seq->assign(size_t(d.s * d.b * H), 0.0f);
  for (int64_t t = 0; t < d.s; ++t) {
    Gemm(h->data(), p.whh.data(), hp.data(), d.b, G, H, false, true);
    for (int64_t b = 0; b < d.b; ++b)
      for (int64_t u = 0; u < H; ++u) {
        const float* px = proj.data() + (t * d.b + b) * G;
        const float* ph = hp.data() + b * G;
        auto pre = [&](int gate) {
          return px[gate * H + u] + ph[gate * H + u] + p.bias[size_t(gate * H + u)];
        };
        float& cs = (*c)[size_t(b * H + u)];
        const float ig = ra(pre(0) + cs * p.peep[size_t(u)]);
        const float fg = ra(pre(1) + cs * p.peep[size_t(H + u)]);
        const float zg = ca(pre(3));
        cs = fg * cs + ig * zg;
        if (has_clip) cs = std::min(std::max(cs, -clip), clip);
        const float og = ra(pre(2) + cs * p.peep[size_t(2 * H + u)]);
        (*h)[size_t(b * H + u)] = og * act(cs);
      }
    std::copy(h->begin(), h->end(), seq->begin() + long(t * d.b * H));
  }
}

Status Lstm(OpContext& ctx) {
  const Tensor *x = nullptr, *h0 = nullptr, *c0 = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", &x));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "initial_h", &h0));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "initial_c", &c0));
  Dims d;
  PALETTIZE_RETURN_IF_ERROR(ReadDims(ctx, *x, 4, &d));
  std::string direction;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("direction", "forward", &direction));
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
    return ctx.Fail("direction: '" + direction + "', expected forward, reverse or bidirectional");
  const int dirs = direction == "bidirectional" ? 2 : 1;
  const int64_t H = d.h;
  for (const Tensor* s : {h0, c0})
    if (s->rank() != 2 || s->dim(0) != d.b || s->dim(1) != dirs * H)
      return ctx.Fail("initial state " + DescribeTensor(*s) + ", expected [" + std::to_string(d.b) + ", " +
                      std::to_string(dirs * H) + "]");
  LstmDirection p[2];
  const char* suffix[2] = {"", "_back"};
  for (int k = 0; k < dirs; ++k) {
    const std::string sfx = suffix[k];
    PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "weight_ih" + sfx, size_t(4 * H * d.i), true, &p[k].wih));
    PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "weight_hh" + sfx, size_t(4 * H * H), true, &p[k].whh));
    PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "bias" + sfx, size_t(4 * H), false, &p[k].bias));
    PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "peephole" + sfx, size_t(3 * H), false, &p[k].peep));
  }
  Act ra = nullptr, ca = nullptr, act = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ActivationByName(ctx, "recurrent_activation", "sigmoid", &ra));
  PALETTIZE_RETURN_IF_ERROR(ActivationByName(ctx, "cell_activation", "tanh", &ca));
  PALETTIZE_RETURN_IF_ERROR(ActivationByName(ctx, "activation", "tanh", &act));
  bool output_sequence = false;
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("output_sequence", false, &output_sequence));
  double clip = 0;
  const bool has_clip = ctx.Has("clip");
  if (has_clip) PALETTIZE_RETURN_IF_ERROR(ctx.Float("clip", &clip));

  const int64_t width = dirs * H, out_steps = output_sequence ? d.s : 1;
  const int dtype = OutDType(ctx, 0, x->dtype());
  Tensor out(dtype, {out_steps, d.b, width}), hn(OutDType(ctx, 1, dtype), {d.b, width}),
      cn(OutDType(ctx, 2, dtype), {d.b, width});
  for (int k = 0; k < dirs; ++k) {
    const bool reverse = direction == "reverse" || k == 1;
    std::vector<float> h(size_t(d.b * H)), c(size_t(d.b * H)), seq;
    for (int64_t b = 0; b < d.b; ++b)
      for (int64_t u = 0; u < H; ++u) {
        h[size_t(b * H + u)] = h0->f()[size_t(b * width + k * H + u)];
        c[size_t(b * H + u)] = c0->f()[size_t(b * width + k * H + u)];
      }
    RunLstm(*x, d, p[k], reverse, ra, ca, act, has_clip, float(clip), &h, &c, &seq);
    for (int64_t t = 0; t < out_steps; ++t) {
      // The processed step written at output step t: the last one without output_sequence; for
      // the backward half of a bidirectional layer, the step aligned with input t.
      int64_t src = output_sequence ? t : d.s - 1;
      if (k == 1 && output_sequence) src = d.s - 1 - t;
      for (int64_t b = 0; b < d.b; ++b)
        for (int64_t u = 0; u < H; ++u)
          out.f()[size_t((t * d.b + b) * width + k * H + u)] = seq[size_t((src * d.b + b) * H + u)];
    }
    for (int64_t b = 0; b < d.b; ++b)
      for (int64_t u = 0; u < H; ++u) {
        hn.f()[size_t(b * width + k * H + u)] = h[size_t(b * H + u)];
        cn.f()[size_t(b * width + k * H + u)] = c[size_t(b * H + u)];
      }
  }
  PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(0, std::move(out)));
  PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(1, std::move(hn)));
  return ctx.SetOutput(2, std::move(cn));
}

// gru and rnn share the frame: one direction (forward or reverse), initial_h [B, H], outputs
// (sequence or last step, last h).
Status SingleDirection(OpContext& ctx, int gates, const Tensor** x, const Tensor** h0, Dims* d, bool* reverse,
                       bool* output_sequence, std::vector<float>* wih, std::vector<float>* whh) {
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "x", x));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "initial_h", h0));
  PALETTIZE_RETURN_IF_ERROR(ReadDims(ctx, **x, gates, d));
  if ((*h0)->size() != size_t(d->b * d->h))
    return ctx.Fail("initial_h: " + DescribeTensor(**h0) + ", expected [" + std::to_string(d->b) + ", " +
                    std::to_string(d->h) + "]");
  std::string direction;
  PALETTIZE_RETURN_IF_ERROR(ctx.StringOr("direction", "forward", &direction));
  if (direction != "forward" && direction != "reverse")
    return ctx.Fail("direction: '" + direction + "', expected forward or reverse");
  *reverse = direction == "reverse";
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("output_sequence", false, output_sequence));
  PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "weight_ih", size_t(gates * d->h * d->i), true, wih));
  return Vector(ctx, "weight_hh", size_t(gates * d->h * d->h), true, whh);
}

Status SetSequenceOutputs(OpContext& ctx, const Dims& d, bool output_sequence, const std::vector<float>& seq,
                          const std::vector<float>& h, int dtype) {
  const int64_t steps = output_sequence ? d.s : 1;
  Tensor out(dtype, {steps, d.b, d.h}), hn(OutDType(ctx, 1, dtype), {d.b, d.h});
  const size_t step = size_t(d.b * d.h);
  std::copy(seq.end() - long(size_t(steps) * step), seq.end(), out.f().begin());
  hn.f() = h;
  PALETTIZE_RETURN_IF_ERROR(ctx.SetOutput(0, std::move(out)));
  return ctx.SetOutput(1, std::move(hn));
}

// Gates in the order [r, o, z]: z = ra(.), r = ra(.), h = (1 - z) o + z h_prev with
// o = act(W_o x + b_i + R_o (r h_prev) + b_o), or with reset_after act(W_o x + b_i + r (R_o h_prev + b_o)).
Status Gru(OpContext& ctx) {
  const Tensor *x = nullptr, *h0 = nullptr;
  Dims d;
  bool reverse = false, output_sequence = false, reset_after = false;
  std::vector<float> wih, whh, bias, ibias;
  PALETTIZE_RETURN_IF_ERROR(SingleDirection(ctx, 3, &x, &h0, &d, &reverse, &output_sequence, &wih, &whh));
  const int64_t H = d.h, G = 3 * H;
  PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "bias", size_t(G), false, &bias));
  PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "input_bias", size_t(G), false, &ibias));
  PALETTIZE_RETURN_IF_ERROR(ctx.BoolOr("reset_after", false, &reset_after));
  Act ra = nullptr, act = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ActivationByName(ctx, "recurrent_activation", "sigmoid", &ra));
  PALETTIZE_RETURN_IF_ERROR(ActivationByName(ctx, "activation", "tanh", &act));
  const std::vector<float> proj = InputProjection(*x, wih, d, 3, reverse);
  std::vector<float> h = h0->f(), seq(size_t(d.s * d.b * H)), hp(size_t(d.b * G)), rh(size_t(d.b * H)),
                     oh(size_t(d.b * H));
  // W_ho^T as its own matrix: without reset_after the output gate multiplies r * h_prev.
  const std::vector<float> who(whh.begin() + long(H * H), whh.begin() + long(2 * H * H));
  std::vector<float> r(size_t(d.b * H));
  for (int64_t t = 0; t < d.s; ++t) {
    Gemm(h.data(), whh.data(), hp.data(), d.b, G, H, false, true);
    for (int64_t b = 0; b < d.b; ++b)
      for (int64_t u = 0; u < H; ++u) {
        const float* px = proj.data() + (t * d.b + b) * G;
        const size_t k = size_t(b * H + u);
        r[k] = ra(px[u] + ibias[size_t(u)] + hp[size_t(b * G + u)] + bias[size_t(u)]);
        rh[k] = r[k] * h[k];
      }
    if (!reset_after) Gemm(rh.data(), who.data(), oh.data(), d.b, H, H, false, true);
    for (int64_t b = 0; b < d.b; ++b)
      for (int64_t u = 0; u < H; ++u) {
        const float* px = proj.data() + (t * d.b + b) * G;
        const float* ph = hp.data() + b * G;
        const size_t k = size_t(b * H + u);
        const float z =
            ra(px[2 * H + u] + ibias[size_t(2 * H + u)] + ph[2 * H + u] + bias[size_t(2 * H + u)]);
        const float in = px[H + u] + ibias[size_t(H + u)];
        const float hidden =
            reset_after ? r[k] * (ph[H + u] + bias[size_t(H + u)]) : oh[k] + bias[size_t(H + u)];
        const float o = act(in + hidden);
        h[k] = (1 - z) * o + z * h[k];
      }
    std::copy(h.begin(), h.end(), seq.begin() + long(t * d.b * H));
  }
  return SetSequenceOutputs(ctx, d, output_sequence, seq, h, OutDType(ctx, 0, x->dtype()));
}

// h = act(W_ih x + R h_prev + bias).
Status Rnn(OpContext& ctx) {
  const Tensor *x = nullptr, *h0 = nullptr;
  Dims d;
  bool reverse = false, output_sequence = false;
  std::vector<float> wih, whh, bias;
  PALETTIZE_RETURN_IF_ERROR(SingleDirection(ctx, 1, &x, &h0, &d, &reverse, &output_sequence, &wih, &whh));
  PALETTIZE_RETURN_IF_ERROR(Vector(ctx, "bias", size_t(d.h), false, &bias));
  Act act = nullptr;
  PALETTIZE_RETURN_IF_ERROR(ActivationByName(ctx, "activation", "tanh", &act));
  const std::vector<float> proj = InputProjection(*x, wih, d, 1, reverse);
  std::vector<float> h = h0->f(), seq(size_t(d.s * d.b * d.h)), hp(size_t(d.b * d.h));
  for (int64_t t = 0; t < d.s; ++t) {
    Gemm(h.data(), whh.data(), hp.data(), d.b, d.h, d.h, false, true);
    for (size_t k = 0; k < h.size(); ++k)
      h[k] = act(proj[size_t(t * d.b * d.h) + k] + hp[k] + bias[k % size_t(d.h)]);
    std::copy(h.begin(), h.end(), seq.begin() + long(t * d.b * d.h));
  }
  return SetSequenceOutputs(ctx, d, output_sequence, seq, h, OutDType(ctx, 0, x->dtype()));
}

}  // namespace

void RegisterRecurrentOps(OpRegistry& r) {
  r.Add("lstm", Lstm);
  r.Add("gru", Gru);
  r.Add("rnn", Rnn);
}

}  // namespace palettize::eval
