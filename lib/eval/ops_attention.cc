// scaled_dot_product_attention (iOS18) and einsum.
#include <cctype>
#include <cmath>
#include <map>

#include "eval/broadcast.h"
#include "eval/gemm.h"
#include "eval/kernel_util.h"
#include "eval/op_registry.h"

namespace palettize::eval {

namespace {

// softmax(Q K^T / sqrt(E) + mask) V for query [*B, L, E], key [*B, S, E], value [*B, S, EV];
// a bool mask keeps the scores where it is true (-inf elsewhere), a float mask is added. The mask
// broadcasts to [*B, L, S].
Status ScaledDotProductAttention(OpContext& ctx) {
  const Tensor *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "query", &q));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "key", &k));
  PALETTIZE_RETURN_IF_ERROR(FloatInput(ctx, "value", &v));
  PALETTIZE_RETURN_IF_ERROR(ctx.OptionalInput("attn_mask", &mask));
  const int r = q->rank();
  bool ok = r >= 3 && k->rank() == r && v->rank() == r && k->dim(r - 1) == q->dim(r - 1) &&
            v->dim(r - 2) == k->dim(r - 2);
  for (int a = 0; ok && a < r - 2; ++a) ok = k->dim(a) == q->dim(a) && v->dim(a) == q->dim(a);
  if (!ok)
    return ctx.Fail("query " + ShapeText(q->shape()) + ", key " + ShapeText(k->shape()) + " and value " +
                    ShapeText(v->shape()) + ": expected [*B, L, E], [*B, S, E] and [*B, S, EV] of rank >= 3");
  const int64_t L = q->dim(r - 2), E = q->dim(r - 1), S = k->dim(r - 2), EV = v->dim(r - 1);
  std::vector<int64_t> score_shape(q->shape().begin(), q->shape().end() - 2);
  score_shape.push_back(L);
  score_shape.push_back(S);
  std::vector<size_t> mask_strides;
  if (mask != nullptr) {
    std::vector<int64_t> b;
    if (mask->is_string() || !BroadcastShape(mask->shape(), score_shape, &b) || b != score_shape)
      return ctx.Fail("attn_mask: " + DescribeTensor(*mask) + " does not broadcast to " +
                      ShapeText(score_shape));
    mask_strides = BroadcastStrides(mask->shape(), score_shape);
  }
  // The mask's value at every score position, -inf for a false bool.
  std::vector<float> add;
  if (mask != nullptr) {
    add.assign(ElementCount(score_shape), 0.0f);
    const std::vector<size_t> none(score_shape.size(), 0);
    ForEachBroadcast(score_shape, mask_strides, none, [&](size_t o, size_t im, size_t) {
      add[o] = mask->is_float() ? mask->f()[im] : (mask->i()[im] != 0 ? 0.0f : -INFINITY);
    });
  }
  std::vector<int64_t> shape = q->shape();
  shape.back() = EV;
  Tensor out(OutDType(ctx, 0, q->dtype()), shape);
  const size_t batches = ElementCount(std::vector<int64_t>(q->shape().begin(), q->shape().end() - 2));
  const float scale = 1.0f / std::sqrt(float(E));
  std::vector<float> scores(size_t(L * S));
  for (size_t b = 0; b < batches; ++b) {
    Gemm(q->f().data() + b * size_t(L * E), k->f().data() + b * size_t(S * E), scores.data(), L, S, E, false,
         true);
    for (int64_t i = 0; i < L; ++i) {
      float* row = scores.data() + i * S;
      float m = -INFINITY;
      for (int64_t j = 0; j < S; ++j) {
        row[j] = row[j] * scale + (add.empty() ? 0.0f : add[b * size_t(L * S) + size_t(i * S + j)]);
        m = std::max(m, row[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < S; ++j) sum += row[j] = std::exp(row[j] - m);
      for (int64_t j = 0; j < S; ++j) row[j] /= sum;
    }
    Gemm(scores.data(), v->f().data() + b * size_t(S * EV), out.f().data() + b * size_t(L * EV), L, EV, S,
         false, false);
  }
  return ctx.SetOutput(0, std::move(out));
}

// einsum("ab..,cd..->..", values): any equation of one or two operands with explicit output
// letters; a letter's dimension of 1 in one operand broadcasts against the other's. Each output
// element sums its products over the summed letters in row-major order.
Status Einsum(OpContext& ctx) {
  std::vector<const Tensor*> values;
  PALETTIZE_RETURN_IF_ERROR(ctx.Inputs("values", &values));
  std::string eq;
  PALETTIZE_RETURN_IF_ERROR(ctx.String("equation", &eq));
  std::string spaceless;
  for (char c : eq)
    if (c != ' ') spaceless += c;
  const size_t arrow = spaceless.find("->");
  if (arrow == std::string::npos || values.empty() || values.size() > 2)
    return ctx.Fail("equation '" + eq + "' with " + std::to_string(values.size()) +
                    " values: expected 'in[,in]->out' with one or two operands");
  std::vector<std::string> ins;
  const std::string lhs = spaceless.substr(0, arrow), rhs = spaceless.substr(arrow + 2);
  for (size_t p = 0, q; p <= lhs.size(); p = q + 1) {
    q = lhs.find(',', p);
    if (q == std::string::npos) q = lhs.size();
    ins.push_back(lhs.substr(p, q - p));
  }
  if (ins.size() != values.size())
    return ctx.Fail("equation '" + eq + "': operand count differs from values");
  std::map<char, int64_t> size;
  for (size_t o = 0; o < ins.size(); ++o) {
    const Tensor& t = *values[o];
    if (!t.is_float() || int(ins[o].size()) != t.rank())
      return ctx.Fail("equation '" + eq + "': operand " + std::to_string(o) + " is " + DescribeTensor(t));
    for (size_t a = 0; a < ins[o].size(); ++a) {
      const char c = ins[o][a];
      if (!std::isalpha(static_cast<unsigned char>(c))) return ctx.Fail("equation '" + eq + "': '" + c + "'");
      const int64_t d = t.dim(int(a));
      auto it = size.find(c);
      if (it == size.end() || it->second == 1)
        size[c] = d;
      else if (d != it->second && d != 1)
        return ctx.Fail("equation '" + eq + "': letter '" + c + "' has sizes " + std::to_string(it->second) +
                        " and " + std::to_string(d));
    }
  }
  std::string letters = rhs;  // output letters first, then the summed ones
  for (char c : rhs)
    if (!size.count(c)) return ctx.Fail("equation '" + eq + "': output letter '" + c + "' is in no operand");
  for (const auto& [c, d] : size)
    if (rhs.find(c) == std::string::npos) letters += c;
  std::vector<int64_t> dims;
  for (char c : letters) dims.push_back(size[c]);
  // Per operand, its element stride along each letter (0 where it lacks it or has size 1).
  std::vector<std::vector<size_t>> strides(values.size(), std::vector<size_t>(letters.size(), 0));
  for (size_t o = 0; o < values.size(); ++o) {
    const std::vector<size_t> st = Strides(values[o]->shape());
    for (size_t a = 0; a < ins[o].size(); ++a)
      if (values[o]->dim(int(a)) != 1) strides[o][letters.find(ins[o][a])] += st[a];
  }
  std::vector<int64_t> out_shape(dims.begin(), dims.begin() + long(rhs.size()));
  Tensor y(OutDType(ctx, 0, values[0]->dtype()), out_shape);
  const size_t sum_count = ElementCount(std::vector<int64_t>(dims.begin() + long(rhs.size()), dims.end()));
  std::vector<int64_t> idx(letters.size(), 0);
  const size_t total = ElementCount(dims);
  for (size_t n = 0; n < total; ++n) {
    size_t off[2] = {0, 0};
    for (size_t a = 0; a < letters.size(); ++a)
      for (size_t o = 0; o < values.size(); ++o) off[o] += size_t(idx[a]) * strides[o][a];
    float p = values[0]->f()[off[0]];
    if (values.size() == 2) p *= values[1]->f()[off[1]];
    y.f()[n / sum_count] += p;
    for (size_t a = letters.size(); a-- > 0;) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
  return ctx.SetOutput(0, std::move(y));
}

}  // namespace

void RegisterAttentionOps(OpRegistry& r) {
  r.Add("scaled_dot_product_attention", ScaledDotProductAttention);
  r.Add("einsum", Einsum);
}

}  // namespace palettize::eval
