// How `compress --packed` stores a palettized tensor X of a checkpoint (docs/format.md section 9).
// For X of dtype DT and shape S (rank r), channel axis a, T tables of K = 2^nbits entries of D
// values (cluster_dim), G channels per table:
//
//   X.lut         DT (float tables) or I8/U8 (lut_dtype), [g_0 .. g_{r-1}, K, D], g_a = T, others 1
//   X.lut_scale   DT, [g_0 .. g_{r-1}, 1, 1]            lut_dtype int8/uint8 only
//   X.lut_offset  U8, [g_0 .. g_{r-1}, 1, 1]            lut_dtype uint8 only
//   X.indices     U8, [ceil(N * nbits / 8)]              N = elements / D indices in row-major order
//                                                        of S with S[a] / D, packed LSB-first
//                                                        (encode/bit_pack.h)
//   X.scale       DT, S with S[a] = 1                     enable_per_channel_scale only
//   __metadata__["palettize.X"] = JSON: {"dtype", "shape", "nbits", "channel_axis", "group_size",
//                                        "cluster_dim", "lut_dtype", "per_channel_scale"}
//
// Element p (a multi-index of S) decodes to e = lut[t][idx][d], with idx = indices[p, p_a / D],
// t = p_a / G, d = p_a % D; quantized tables give round_DT(lut_scale[t] * (e - lut_offset[t]));
// a per-channel scale gives round_DT(scale[p with p_a = 0] * e). Each product is computed
// exactly and rounded once to DT (nearest, ties to even): the dense output's value.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettizer/weight_palettizer.h"
#include "safetensors/safetensors_writer.h"

namespace palettize {

struct StoredTensor {
  SafeTensorSpec spec;
  std::string data;  // little-endian, row-major
};

// The tensors above for palettized tensor `name`, and its __metadata__ value.
void PackTensor(const std::string& name, SafeDType dtype, const TensorShape& shape, const WeightPlan& plan,
                const PalettizedWeight& p, std::vector<StoredTensor>* out, std::string* metadata);

// Their total size in bytes, without building them.
uint64_t PackedTensorBytes(SafeDType dtype, const TensorShape& shape, const WeightPlan& plan,
                           const PalettizedWeight& p);

// `n` values, each exact in float dtype `dtype` (F16, BF16, F32, F64), as its bytes.
void EncodeFloats(SafeDType dtype, const double* values, uint64_t n, std::string* out);

}  // namespace palettize
