#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "encode/lut_ops.h"
#include "encode/scale_fold.h"
#include "mil/dtype.h"
#include "palettizer/weight_palettizer.h"
#include "test_util.h"

using namespace palettize;
using MT = CoreML::Specification::MILSpec::DataType;

namespace {

// group_size 0: per_tensor (one group of all `channels`).
WeightPlan ScaledPlan(int nbits, uint64_t group_size, uint64_t channels) {
  WeightPlan p;
  p.palettize = true;
  p.config.mode = PalettizeMode::kKMeans;
  p.config.nbits = nbits;
  p.config.enable_per_channel_scale = true;
  if (group_size != 0) p.config.granularity = Granularity::kPerGroupedChannel;
  p.channel_axis = 0;
  p.group_size = group_size == 0 ? channels : group_size;
  return p;
}

// Values exact in `dtype`, columns of very different magnitudes so that the scales differ.
std::vector<double> Weight(uint64_t rows, uint64_t cols, int dtype) {
  std::mt19937 rng(7);
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<double> v(rows * cols);
  for (uint64_t r = 0; r < rows; ++r)
    for (uint64_t c = 0; c < cols; ++c)
      v[r * cols + c] = RoundToDType(n(rng) * double(1 + c % 5) * 0.01, dtype);
  return v;
}

bool SameBits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("a folded per-channel scale decodes to the wrapper's bits", "[encode]") {
  for (int dtype : {int(MT::FLOAT16), int(MT::FLOAT32)}) {
    const uint64_t rows = 16, cols = 24;
    const TensorShape shape = MakeShape({rows, cols}, dtype);
    const std::vector<double> w = Weight(rows, cols, dtype);
    PalettizedWeight p;
    std::string why;
    REQUIRE(PalettizeWeight(w, shape, ScaledPlan(4, 0, rows), {1, 2, 3, 4, 6, 8}, &p, &why));
    REQUIRE(p.decoded.size() == w.size());
    FoldedLut fold;
    REQUIRE(FoldChannelScale(p, shape.dims, dtype, &fold, &why));
    // One table per column (the scale's positions), 16 entries, vector length 1.
    CHECK(fold.shape == std::vector<uint64_t>{1, cols, 16, 1});
    for (uint64_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < cols; ++c) {
        const uint64_t e = r * cols + c;
        const double got = fold.lut[c * 16 + p.indices[e]];
        INFO("dtype " << dtype << " element " << e);
        CHECK(SameBits(got, p.decoded[e]));
        CHECK(SameBits(got, RoundToDType(got, dtype)));
      }
  }
}

TEST_CASE("the fold check names the first element that differs", "[encode]") {
  const TensorShape shape = MakeShape({8, 12}, MT::FLOAT16);
  PalettizedWeight p;
  std::string why;
  REQUIRE(
      PalettizeWeight(Weight(8, 12, MT::FLOAT16), shape, ScaledPlan(2, 0, 8), {1, 2, 3, 4, 6, 8}, &p, &why));
  FoldedLut fold;
  REQUIRE(FoldChannelScale(p, shape.dims, MT::FLOAT16, &fold, &why));
  // A wrapper decode that differs at element 13: the fold no longer reproduces it.
  p.decoded[13] += 1.0;
  CHECK_FALSE(FoldChannelScale(p, shape.dims, MT::FLOAT16, &fold, &why));
  CHECK(why.find("element 13 ") != std::string::npos);
  // Vector tables cannot fold.
  p.cluster_dim = 2;
  CHECK_FALSE(FoldChannelScale(p, shape.dims, MT::FLOAT16, &fold, &why));
  CHECK(why.find("cluster_dim 2") != std::string::npos);
}

TEST_CASE("auto folds a per-channel scale only when at most 1.5x the wrapper's bytes", "[encode]") {
  const uint64_t rows = 256, cols = 32;
  const TensorShape shape = MakeShape({rows, cols}, MT::FLOAT16);
  const std::vector<double> w = Weight(rows, cols, MT::FLOAT16);
  std::string why;
  FoldedLut fold;
  // per_tensor 4-bit: indices 4096 B; the wrapper adds 16 entries + 32 scales, the fold 32 x 16
  // entries (1.22x: folded).
  PalettizedWeight p;
  REQUIRE(PalettizeWeight(w, shape, ScaledPlan(4, 0, rows), {1, 2, 3, 4, 6, 8}, &p, &why));
  ScaleFormOutcome a =
      ChooseScaleForm(p, shape.dims, MT::FLOAT16, LutDType::kFloat, PerChannelScaleForm::kAuto, &fold);
  CHECK(a.wrapper_bytes == 4096 + 16 * 2 + 32 * 2);
  CHECK(a.folded_bytes == 4096 + 32 * 16 * 2);
  CHECK(a.folded);
  ScaleFormOutcome wr =
      ChooseScaleForm(p, shape.dims, MT::FLOAT16, LutDType::kFloat, PerChannelScaleForm::kWrapper, &fold);
  CHECK_FALSE(wr.folded);
  CHECK(wr.note == "wrapper form asked for");
  // Groups of 4 channels: 64 tables, folded to 64 x 32 tables of 16 entries (16x: the wrapper).
  PalettizedWeight g;
  REQUIRE(PalettizeWeight(w, shape, ScaledPlan(4, 4, rows), {1, 2, 3, 4, 6, 8}, &g, &why));
  ScaleFormOutcome big =
      ChooseScaleForm(g, shape.dims, MT::FLOAT16, LutDType::kFloat, PerChannelScaleForm::kAuto, &fold);
  CHECK(big.folded_bytes == 4096 + 64 * 32 * 16 * 2);
  CHECK_FALSE(big.folded);
  CHECK(big.note == "folded form larger than 1.5 x the wrapper form");
  // Asked for, the fold is still refused when it is no smaller than the dense weight (16 KiB).
  ScaleFormOutcome forced =
      ChooseScaleForm(g, shape.dims, MT::FLOAT16, LutDType::kFloat, PerChannelScaleForm::kFolded, &fold);
  CHECK_FALSE(forced.folded);
  CHECK(forced.note == "folded form not smaller than the dense weight");
  ScaleFormOutcome forced_small =
      ChooseScaleForm(p, shape.dims, MT::FLOAT16, LutDType::kFloat, PerChannelScaleForm::kFolded, &fold);
  CHECK(forced_small.folded);
  CHECK(fold.shape == std::vector<uint64_t>{1, cols, 16, 1});
}
