// Bit allocation's candidates against real compress runs: the bytes each width is stored in and
// its sse are what compress reports for that width, and the sweep's tables and indices are what
// PalettizeWeightRaw gives.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "alloc/candidates.h"
#include "compress/mil_plan.h"
#include "mil/weights.h"
#include "package/package.h"
#include "package/tensor_reader.h"
#include "palettize/compress.h"
#include "palettizer/sweep.h"
#include "plan/plan.h"
#include "test_util.h"

using namespace palettize;

namespace {

struct Variant {
  const char* name;
  PalettizeConfig config;
  bool ios18;
  bool small_only = false;  // leave out mnist's 627,200-element weight (general path: slow)
};

OptimizationConfig ConfigOf(const Variant& v, int nbits) {
  OptimizationConfig config;
  config.global_config = v.config;
  config.global_config->nbits = nbits;
  if (v.small_only) config.op_name_configs["model_Dense1_weight_to_fp16"] = std::nullopt;
  return config;
}

std::vector<Variant> Variants() {
  std::vector<Variant> v;
  PalettizeConfig c;
  c.weight_threshold = 0;
  v.push_back({"kmeans per_tensor, iOS16 form", c, false});
  v.push_back({"kmeans per_tensor, iOS18 form", c, true});
  PalettizeConfig g = c;
  g.granularity = Granularity::kPerGroupedChannel;
  g.group_size = 2;
  v.push_back({"kmeans per_grouped_channel 2", g, true});
  PalettizeConfig s = c;
  s.enable_per_channel_scale = true;
  v.push_back({"kmeans per-channel scale", s, true, true});
  PalettizeConfig q = g;
  q.lut_dtype = LutDType::kInt8;
  v.push_back({"kmeans grouped, int8 LUT", q, true});
  PalettizeConfig u = c;
  u.mode = PalettizeMode::kUniform;
  u.lut_dtype = LutDType::kUInt8;
  v.push_back({"uniform per_tensor, uint8 LUT", u, true});
  return v;
}

}  // namespace

TEST_CASE("Candidates: bytes and sse equal a real compress's at every width and granularity", "[alloc]") {
  TempDir tmp;
  int compared = 0, dropped = 0;
  for (const char* model : {"mnist", "activity_fp32"}) {
    for (const Variant& v : Variants()) {
      INFO(model << ": " << v.name);
      const std::vector<int> widths = CandidateWidths(v.ios18);
      // The planned weights and their values, as the spine reads them.
      Package package;
      REQUIRE(package.Load(SharedModel(model)).ok());
      std::vector<ConstWeight> weights;
      REQUIRE(FindWeights(package.model(), &weights).ok());
      const OptimizationConfig config = ConfigOf(v, 4);
      std::vector<WeightPlan> plans;
      REQUIRE(PlanMilWeights(weights, config, &plans).ok());
      std::vector<WeightSweep> sweeps(weights.size());
      std::vector<TensorData> data(weights.size());
      for (int nbits : widths) {
        INFO("nbits " << nbits);
        CompressOptions o;
        o.config = config;
        o.config.global_config->nbits = nbits;
        o.min_target = v.ios18 ? DeploymentTarget::kIOS18 : DeploymentTarget::kAuto;
        o.overwrite = true;
        CompressReport rep;
        const Status st = Compress(SharedModel(model), tmp.path() + "/out.mlpackage", o, &rep);
        INFO(st.message());
        REQUIRE(st.ok());
        REQUIRE(rep.targets.size() == 1);
        CHECK((rep.targets[0].second >= 18) == v.ios18);
        for (size_t i = 0; i < weights.size(); ++i) {
          if (!plans[i].palettize) continue;
          const WeightReport& r = rep.weights[i];
          REQUIRE(r.name == weights[i].name);
          if (sweeps[i].candidates.empty()) {
            REQUIRE(ReadTensorData(package, weights[i], &data[i]).ok());
            SweepOptions so;
            so.widths = widths;
            so.form = v.ios18 ? StoredForm::kLutIOS18 : StoredForm::kLutIOS16;
            so.dense_bytes = r.bytes_before;
            REQUIRE(SweepWeight(data[i].data, weights[i].shape, plans[i], nullptr, so, &sweeps[i]).ok());
            const auto& c = sweeps[i].candidates;
            REQUIRE(!c.empty());
            CHECK(c.back().nbits == 0);
            CHECK(c.back().bytes == r.bytes_before);
            for (size_t k = 1; k < c.size(); ++k) CHECK(c[k - 1].bytes <= c[k].bytes);
          }
          const AllocationCandidate* found = nullptr;
          for (const AllocationCandidate& c : sweeps[i].candidates)
            if (c.nbits == nbits) found = &c;
          INFO(weights[i].name << ": " << r.reason);
          if (!r.palettized) {
            // Compress keeps a weight whose palettized form would not be smaller: so does the sweep.
            CHECK(found == nullptr);
            CHECK(r.reason.find("bytes, not less than its") != std::string::npos);
            ++dropped;
            continue;
          }
          REQUIRE(found != nullptr);
          CHECK(found->bytes == r.bytes_after);
          CHECK(found->sse == r.sse);
          CHECK(found->cost == r.sse);
          CHECK(found->snr_db == r.snr_db);
          ++compared;
        }
      }
    }
  }
  CHECK(compared > 50);
  CHECK(dropped > 0);
}

TEST_CASE("PalettizeWeightSweep equals PalettizeWeightRaw per width; FillIndices recovers the indices",
          "[alloc]") {
  Package package;
  REQUIRE(package.Load(SharedModel("mnist")).ok());
  std::vector<ConstWeight> weights;
  REQUIRE(FindWeights(package.model(), &weights).ok());
  for (const Variant& v : Variants()) {
    INFO(v.name);
    const OptimizationConfig config = ConfigOf(v, 4);
    std::vector<WeightPlan> plans;
    REQUIRE(PlanMilWeights(weights, config, &plans).ok());
    const std::vector<int> widths = CandidateWidths(true);
    for (size_t i = 0; i < weights.size(); ++i) {
      if (!plans[i].palettize) continue;
      TensorData data;
      REQUIRE(ReadTensorData(package, weights[i], &data).ok());
      std::vector<PalettizedWeight> kept, bare;
      std::string why;
      REQUIRE(PalettizeWeightSweep(data.data, weights[i].shape, plans[i], widths, true, &kept, &why));
      REQUIRE(PalettizeWeightSweep(data.data, weights[i].shape, plans[i], widths, false, &bare, &why));
      REQUIRE(kept.size() == widths.size());
      for (size_t w = 0; w < widths.size(); ++w) {
        INFO(weights[i].name << " nbits " << widths[w]);
        const WeightPlan plan = WithNBits(plans[i], widths[w]);
        PalettizedWeight one;
        REQUIRE(PalettizeWeightRaw(data.data, weights[i].shape, plan, widths, true, &one, &why));
        CHECK(kept[w].nbits == widths[w]);
        CHECK(kept[w].lut == one.lut);
        CHECK(kept[w].lut_scale == one.lut_scale);
        CHECK(kept[w].lut_offset == one.lut_offset);
        CHECK(kept[w].channel_scale == one.channel_scale);
        CHECK(kept[w].indices == one.indices);
        CHECK(kept[w].indices_shape == one.indices_shape);
        CHECK(kept[w].sse == one.sse);
        CHECK(kept[w].max_abs_error == one.max_abs_error);
        CHECK(kept[w].snr_db == one.snr_db);
        CHECK(bare[w].indices.empty());
        CHECK(bare[w].lut == one.lut);
        REQUIRE(FillIndices(data.data, weights[i].shape, plan, true, &bare[w], &why));
        CHECK(bare[w].indices == one.indices);
        CHECK(bare[w].decoded == one.decoded);
        CHECK(bare[w].sse == one.sse);
      }
    }
  }
}
