#include "eval/gemm.h"

#include <tbb/parallel_for.h>
#include <Eigen/Core>

namespace palettize::eval {

namespace {

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor>;
using OuterStrideMap = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;

// Rows of C per task. Fixed (not derived from the thread count) so results are reproducible.
constexpr int64_t kRowBlock = 32;

}  // namespace

void Gemm(const float* a, const float* b, float* c, int64_t m, int64_t n, int64_t k, bool trans_a,
          bool trans_b) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(c, c + m * n, 0.0f);
    return;
  }
  const ConstMap bm(b, trans_b ? n : k, trans_b ? k : n);
  auto block = [&](int64_t r0, int64_t rows) {
    Eigen::Map<RowMajor> cm(c + r0 * n, rows, n);
    if (trans_a) {
      // A is [K x M]: the block's rows of op(A) are columns r0.. of A.
      const OuterStrideMap am(a + r0, k, rows, Eigen::OuterStride<>(m));
      if (trans_b)
        cm.noalias() = am.transpose() * bm.transpose();
      else
        cm.noalias() = am.transpose() * bm;
    } else {
      const ConstMap am(a + r0 * k, rows, k);
      if (trans_b)
        cm.noalias() = am * bm.transpose();
      else
        cm.noalias() = am * bm;
    }
  };
  const int64_t blocks = (m + kRowBlock - 1) / kRowBlock;
  if (blocks == 1 || m * n * k < (int64_t(1) << 16)) {
    for (int64_t r = 0; r < m; r += kRowBlock) block(r, std::min(kRowBlock, m - r));
    return;
  }
  tbb::parallel_for(int64_t(0), blocks, [&](int64_t bi) {
    const int64_t r = bi * kRowBlock;
    block(r, std::min(kRowBlock, m - r));
  });
}

}  // namespace palettize::eval
