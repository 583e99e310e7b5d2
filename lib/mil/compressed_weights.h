// The weights a model already holds in compressed form: the last op of each chain of constexpr_*
// ops (constexpr_lut_to_dense, constexpr_affine_dequantize, constexpr_blockwise_shift_scale,
// constexpr_sparse_to_dense, ...). compress leaves them as they are and reports them.
#pragma once

#include <string>
#include <vector>

#include "mil/weights.h"

namespace palettize {

struct CompressedWeight {
  std::string program;  // as ConstWeight::program
  std::string function;
  std::string name;                 // the chain's output, the name consumers bind to
  std::string chain;                // op types from first to last, "constexpr_lut_to_dense" or
                                    // "constexpr_lut_to_dense -> constexpr_blockwise_shift_scale"
  TensorShape shape;                // dims empty if the output type is not a plain tensor type
  std::vector<Consumer> consumers;  // ops outside the chain that read the output
};

// Every chain in every ML Program of `model`, in the order FindWeights uses (program, function,
// block, op of the chain's last op).
std::vector<CompressedWeight> FindCompressedWeights(spec::Model& model);

}  // namespace palettize
