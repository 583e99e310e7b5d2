#include "encode/scale_fold.h"

#include <cstring>

#include "encode/bit_pack.h"
#include "mil/dtype.h"

namespace palettize {

namespace {

// The weight viewed as [outer, C, inner] around channel axis a.
struct View {
  uint64_t outer = 1, channels = 1, inner = 1;
};

View ViewOf(const std::vector<uint64_t>& dims, int axis) {
  View v;
  for (size_t j = 0; j < dims.size(); ++j) {
    if (int(j) < axis) v.outer *= dims[j];
    if (int(j) == axis) v.channels = dims[j];
    if (int(j) > axis) v.inner *= dims[j];
  }
  return v;
}

// Bit patterns, so that -0 and +0 differ (both are finite doubles: no NaN here).
bool SameBits(double a, double b) {
  uint64_t x = 0, y = 0;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return x == y;
}

}  // namespace

std::vector<double> FloatLutEntries(const PalettizedWeight& p, int mil_type) {
  if (p.lut_scale.empty()) return p.lut;
  std::vector<double> out(p.lut.size());
  const uint64_t per_table = p.lut.size() / p.tables;
  for (uint64_t k = 0; k < p.lut.size(); ++k) {
    const uint64_t t = k / per_table;
    const double offset = p.lut_offset.empty() ? 0.0 : p.lut_offset[t];
    out[k] = RoundToDType(p.lut_scale[t] * (p.lut[k] - offset), mil_type);
  }
  return out;
}

uint64_t FoldedBytes(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type) {
  const View v = ViewOf(dims, p.channel_axis);
  uint64_t indices = 1;
  for (uint64_t d : p.indices_shape) indices *= d;
  const uint64_t entries = v.outer * p.tables * v.inner * (uint64_t(1) << p.nbits);
  return PackedSize(indices, p.nbits) + entries * uint64_t(FindDType(mil_type)->bits / 8);
}

bool FoldChannelScale(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type,
                      FoldedLut* out, std::string* reason) {
  if (p.channel_scale.empty()) {
    *reason = "no per-channel scale";
    return false;
  }
  if (p.cluster_dim != 1) {
    *reason = "cluster_dim " + std::to_string(p.cluster_dim) + " (vector tables cannot vary per position)";
    return false;
  }
  const View v = ViewOf(dims, p.channel_axis);
  const uint64_t K = uint64_t(1) << p.nbits;
  const uint64_t T = p.tables;
  const uint64_t G = v.channels / T;
  if (p.channel_scale.size() != v.outer * v.inner || p.indices.size() != v.outer * v.channels * v.inner) {
    *reason = "scale or indices do not match the weight's shape";
    return false;
  }
  const std::vector<double> entries = FloatLutEntries(p, mil_type);
  out->shape = dims;
  for (size_t j = 0; j < dims.size(); ++j)
    if (int(j) == p.channel_axis) out->shape[j] = T;
  out->shape.push_back(K);
  out->shape.push_back(1);
  out->lut.assign(v.outer * T * v.inner * K, 0.0);
  for (uint64_t o = 0; o < v.outer; ++o)
    for (uint64_t t = 0; t < T; ++t)
      for (uint64_t i = 0; i < v.inner; ++i)
        for (uint64_t k = 0; k < K; ++k)
          out->lut[((o * T + t) * v.inner + i) * K + k] =
              RoundToDType(p.channel_scale[o * v.inner + i] * entries[t * K + k], mil_type);

  // Every element: the folded table's entry against what the wrapper decodes to.
  const bool have_decoded = p.decoded.size() == p.indices.size();
  for (uint64_t o = 0; o < v.outer; ++o)
    for (uint64_t c = 0; c < v.channels; ++c)
      for (uint64_t i = 0; i < v.inner; ++i) {
        const uint64_t e = (o * v.channels + c) * v.inner + i;
        const uint64_t t = c / G;
        const uint64_t k = p.indices[e];
        const double folded = out->lut[((o * T + t) * v.inner + i) * K + k];
        const double wrapper =
            have_decoded ? p.decoded[e]
                         : RoundToDType(p.channel_scale[o * v.inner + i] * entries[t * K + k], mil_type);
        if (!SameBits(folded, wrapper)) {
          *reason =
              "element " + std::to_string(e) + " folds to a different value than the wrapper decodes to";
          return false;
        }
      }
  return true;
}

}  // namespace palettize
