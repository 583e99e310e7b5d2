// The compress spine (compress/spine.h) on synthetic weights: largest first, results written in
// that order for any thread count, the report's entries and totals; and shape-only planning
// (plan/plan.h), which a package's const and a checkpoint's tensor reach through their own
// PlanInput, giving one plan for the same facts.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "MIL.pb.h"
#include "checkpoint/checkpoint_plan.h"
#include "compress/mil_plan.h"
#include "compress/spine.h"
#include "plan/plan.h"
#include "safetensors/safetensors.h"
#include "test_util.h"

using namespace palettize;

namespace {

using MT = CoreML::Specification::MILSpec::DataType;

PalettizeConfig Grouped(int nbits, int group_size) {
  PalettizeConfig c;
  c.nbits = nbits;
  c.granularity = Granularity::kPerGroupedChannel;
  c.group_size = group_size;
  return c;
}

void CheckSamePlan(const WeightPlan& a, const WeightPlan& b) {
  CHECK(a.palettize == b.palettize);
  CHECK(a.reason == b.reason);
  CHECK(a.config_source == b.config_source);
  CHECK(a.has_config == b.has_config);
  CHECK(SameConfig(a.config, b.config));
  CHECK(a.channel_axis == b.channel_axis);
  CHECK(a.group_size == b.group_size);
  CHECK(a.needs_ios18 == b.needs_ios18);
}

}  // namespace

TEST_CASE("a package const and a checkpoint tensor with the same facts get the same plan", "[spine]") {
  // A float32 [64, 96] weight of a Linear module "enc.fc", once as a MIL const read by an op of
  // that name and type, once as the checkpoint tensor "enc.fc.weight".
  ConstWeight w;
  w.name = "enc.fc.weight";
  w.shape = MakeShape({64, 96}, MT::FLOAT32);
  w.consumers.push_back({"Linear", "enc.fc", "weight", {}});
  SafeTensor t;
  t.name = "enc.fc.weight";
  t.dtype = SafeDType::kF32;
  t.shape = {64, 96};
  t.elements = 64 * 96;
  const PlanInput from_mil = MilPlanInput(w);
  const PlanInput from_checkpoint = CheckpointPlanInput(t, "enc.fc", "Linear");
  CHECK(from_mil.name == from_checkpoint.name);
  CHECK(from_mil.dtype == from_checkpoint.dtype);
  CHECK(from_mil.dims == from_checkpoint.dims);
  CHECK(from_mil.elements == from_checkpoint.elements);
  REQUIRE(from_checkpoint.consumers.size() == 1);
  CHECK(from_checkpoint.consumers[0].op_type == "Linear");
  CHECK(from_checkpoint.consumers[0].op_name == "enc.fc");
  CHECK(from_checkpoint.consumers[0].input == "weight");

  OptimizationConfig cfg;
  for (const PalettizeConfig& c : {Grouped(4, 16), Grouped(3, 32), Grouped(4, 48)}) {
    cfg.global_config = c;
    std::vector<WeightPlan> a, b;
    REQUIRE(PlanMilWeights({w}, cfg, &a).ok());
    REQUIRE(PlanWeights({from_checkpoint}, cfg, &b).ok());
    CheckSamePlan(a[0], b[0]);
  }
  CHECK(WhyNotPalettizable(from_mil) == WhyNotPalettizable(from_checkpoint));
  cfg.global_config = Grouped(4, 16);
  cfg.global_config->weight_threshold = 64 * 96;  // not more elements than the threshold: kept
  std::vector<WeightPlan> a, b;
  REQUIRE(PlanMilWeights({w}, cfg, &a).ok());
  REQUIRE(PlanWeights({from_checkpoint}, cfg, &b).ok());
  CHECK_FALSE(a[0].palettize);
  CHECK(a[0].reason == "6144 elements <= weight_threshold 6144");
  CheckSamePlan(a[0], b[0]);

  // A checkpoint's BF16 tensor is planned as float32 (the module rule chose its dtypes); a MIL
  // bfloat16 const is not a candidate.
  t.dtype = SafeDType::kBF16;
  CHECK(CheckpointPlanInput(t, "enc.fc", "Linear").dtype == "float32");
  w.shape = MakeShape({64, 96}, MT::BFLOAT16);
  CHECK(WhyNotPalettizable(MilPlanInput(w)) ==
        "dtype bfloat16 is not palettized (only float16, float32, int8, uint8)");
}

namespace {

// Weights of float32 values held in memory; records what the spine asks of it.
class MemoryIO : public SpineIO {
 public:
  explicit MemoryIO(std::vector<std::vector<float>> values) : values_(std::move(values)) {}
  Status Read(SpineJob* job) override {
    reads.push_back(job->index);
    job->data = reinterpret_cast<const uint8_t*>(values_[job->index].data());
    job->bytes = values_[job->index].size() * 4;
    return Status::OK();
  }
  void Matched(CompressReport*) override { ++matched; }
  Status Begin() override {
    ++begun;
    return Status::OK();
  }
  // Half the size before, except for weight `too_big`, which would not shrink.
  uint64_t EncodedBytes(const SpineJob& job, const PalettizedWeight&) override {
    const uint64_t before = values_[job.index].size() * 4;
    return job.index == too_big ? before : before / 2;
  }
  Status Write(const SpineJob& job, PalettizedWeight&& p, uint64_t encoded, WeightReport* r) override {
    writes.push_back(job.index);
    CHECK(p.nbits == 2);
    r->bytes_after = encoded;
    return Status::OK();
  }
  Status Finish(CompressReport*) override {
    ++finished;
    return Status::OK();
  }
  void AllocationFacts(const SpineJob& job, SweepOptions* sweep, std::string* config_key) override {
    sweep->widths = *job.allowed_nbits;
    sweep->form = StoredForm::kPacked;
    sweep->packed_dtype = SafeDType::kF32;
    *config_key = "w" + std::to_string(job.index);
  }
  Status Commit(const std::vector<StagedOutput*>&) override {
    ++committed;
    return Status::OK();
  }

  size_t too_big = size_t(-1);
  std::vector<size_t> reads, writes;
  int matched = 0, begun = 0, finished = 0, committed = 0;

 private:
  std::vector<std::vector<float>> values_;
};

// Weight i: `rows[i]` x 16 float32 values of four clusters.
std::vector<std::vector<float>> Values(const std::vector<uint64_t>& rows) {
  std::vector<std::vector<float>> out;
  for (uint64_t r : rows) {
    std::vector<float> v(r * 16);
    for (size_t k = 0; k < v.size(); ++k) v[k] = float(k % 4) + 0.001f * float(k % 7);
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace

TEST_CASE("the spine palettizes largest first, writes in that order and sums the report", "[spine]") {
  // Weights 0..5 of 16 columns; 1 is not palettized (as planned), 4 would not shrink.
  const std::vector<uint64_t> rows = {8, 4, 32, 8, 16, 32};
  OptimizationConfig cfg;
  cfg.global_config = PalettizeConfig();
  cfg.global_config->nbits = 2;
  cfg.global_config->weight_threshold = 0;
  std::vector<TensorShape> shapes;
  std::vector<PlanInput> inputs;
  for (size_t i = 0; i < rows.size(); ++i) {
    shapes.push_back(MakeShape({rows[i], 16}, MT::FLOAT32));
    inputs.push_back({"w" + std::to_string(i),
                      "float32",
                      shapes.back().dims,
                      shapes.back().elements,
                      {{"linear", "op" + std::to_string(i), "weight", {}}}});
  }
  cfg.op_name_configs["op1"] = std::nullopt;
  std::vector<WeightPlan> plans;
  REQUIRE(PlanWeights(inputs, cfg, &plans).ok());
  REQUIRE_FALSE(plans[1].palettize);
  const std::vector<int> nbits = {1, 2, 4, 6, 8};

  for (int threads : {1, 3}) {
    for (bool dry_run : {false, true}) {
      CompressReport report;
      report.weights.resize(rows.size());
      std::vector<SpineJob> jobs;
      for (size_t i = 0; i < rows.size(); ++i) {
        report.weights[i].name = inputs[i].name;
        ReportPlan(plans[i], rows[i] * 16 * 4, &report.weights[i]);
        if (!plans[i].palettize) continue;
        SpineJob job;
        job.index = i;
        job.shape = &shapes[i];
        job.plan = &plans[i];
        job.allowed_nbits = &nbits;
        jobs.push_back(job);
      }
      MemoryIO io(Values(rows));
      io.too_big = 4;
      SpineSettings settings;
      settings.threads = threads;
      settings.dry_run = dry_run;
      std::vector<std::pair<size_t, uint64_t>> progress;
      settings.progress = [&](size_t done, size_t total, uint64_t bytes_done, uint64_t bytes_total) {
        CHECK(total == 5);
        CHECK(bytes_total == (8 + 32 + 8 + 16 + 32) * 64);
        progress.emplace_back(done, bytes_done);
      };
      REQUIRE(RunSpine(jobs, settings, io, &report).ok());
      // Largest first; ties in the order given.
      CHECK(io.reads == std::vector<size_t>{2, 5, 4, 0, 3});
      CHECK(io.matched == 1);
      if (dry_run) {
        CHECK(io.begun == 0);
        CHECK(io.writes.empty());
        CHECK(report.palettized == 5);
        CHECK(report.skipped == 1);
        CHECK(report.bytes_before == 0);  // a package's dry run counts weights only
        continue;
      }
      CHECK(io.begun == 1);
      CHECK(io.finished == 1);
      CHECK(io.committed == 1);
      CHECK(io.writes == std::vector<size_t>{2, 5, 0, 3});
      CHECK(progress.size() == 5);
      CHECK(progress.back() == std::make_pair(size_t(5), uint64_t((8 + 32 + 8 + 16 + 32) * 64)));
      const WeightReport& kept = report.weights[4];
      CHECK_FALSE(kept.palettized);
      CHECK(kept.reason == "palettized it would take 1024 bytes, not less than its 1024");
      CHECK(kept.bytes_after == 1024);
      CHECK(report.weights[2].palettized);
      CHECK(report.weights[2].nbits == 2);
      CHECK(report.weights[2].luts == 1);
      CHECK(report.weights[2].bytes_after == 1024);
      CHECK(report.palettized == 4);
      CHECK(report.skipped == 2);
      CHECK(report.bytes_before == (8 + 4 + 32 + 8 + 16 + 32) * 64);
      CHECK(report.bytes_after == (8 + 32 + 8 + 32) * 32 + (4 + 16) * 64);
    }
  }
}

TEST_CASE("ValidateConfigs names the schema's sections", "[spine]") {
  OptimizationConfig cfg;
  PalettizeConfig bad;
  bad.nbits = 5;
  cfg.op_type_configs["Linear"] = bad;
  const Status st = ValidateConfigs(cfg, "module_type_configs", "module_name_configs");
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message().rfind("module_type_configs.Linear: ", 0) == 0);
  cfg.op_type_configs["Linear"] = std::nullopt;
  cfg.op_name_configs["a.b"] = bad;
  CHECK(ValidateConfigs(cfg, "op_type_configs", "op_name_configs")
            .message()
            .rfind("op_name_configs.a.b: ", 0) == 0);
}
