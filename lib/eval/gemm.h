// Matrix products for linear, matmul and conv (im2col), on Eigen, in float.
#pragma once

#include <cstdint>

namespace palettize::eval {

// C[M x N] = op(A) * op(B), row-major; op(A) is A [M x K] or, with trans_a, A^T of A [K x M];
// op(B) is B [K x N] or, with trans_b, B^T of B [N x K]. Rows of C are split into fixed blocks
// of rows run in parallel (TBB): each block's product has the same sizes for any thread count,
// so C does not depend on it.
void Gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b);

}  // namespace palettize::eval
