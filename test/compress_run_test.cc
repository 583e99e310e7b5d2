// RunCompress: the config it builds (file or default, with overrides), the input kind it chooses,
// and the batch's report Status apart from its models'.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "palettize/compress_run.h"
#include "test_util.h"

using namespace palettize;

TEST_CASE("RunCompress on a package: default config with overrides, a dry run writes nothing",
          "[compress_run]") {
  TempDir tmp;
  CompressRun run;
  run.inputs = {SharedModel("mnist")};
  run.output = tmp.path() + "/o.mlpackage";
  run.options.dry_run = true;
  run.overrides.nbits = 4;
  CompressRunReport report;
  const Status st = RunCompress(run, &report);
  INFO(st.message());
  REQUIRE(st.ok());
  CHECK(report.kind == CompressRunReport::Kind::kPackage);
  size_t palettized = 0;
  for (const WeightReport& w : report.package.weights) {
    if (!w.palettized) continue;
    ++palettized;
    CHECK(DescribeConfig(w.config) == "kmeans 4-bit per_tensor");
    CHECK(w.config_source == "global_config");
  }
  CHECK(palettized > 0);
  CHECK(!std::filesystem::exists(run.output));
}

TEST_CASE("RunCompress reads the config file, then the overrides; its errors come first", "[compress_run]") {
  TempDir tmp;
  const std::string config = tmp.path() + "/c.yaml";
  std::ofstream(config) << "global_config: {mode: uniform, nbits: 8}\n";
  CompressRun run;
  run.inputs = {SharedModel("mnist")};
  run.options.dry_run = true;
  run.options.config_file = config;
  run.overrides.nbits = 2;
  CompressRunReport report;
  REQUIRE(RunCompress(run, &report).ok());
  for (const WeightReport& w : report.package.weights)
    if (w.palettized) CHECK(DescribeConfig(w.config) == "uniform 2-bit per_tensor");

  run.overrides.group_size = 0;
  Status st = RunCompress(run, &report);
  CHECK(st.message() == "options: group_size: 0 is not an integer >= 1");
  run.options.config_file = tmp.path() + "/missing.yaml";
  st = RunCompress(run, &report);
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message().rfind(run.options.config_file + ": ", 0) == 0);
}

TEST_CASE("RunCompress: a .safetensors input is a checkpoint; packed and several inputs need theirs",
          "[compress_run]") {
  TempDir tmp;
  CompressRun run;
  run.inputs = {tmp.path() + "/in.safetensors"};
  run.output = tmp.path() + "/out.safetensors";
  run.options.min_target = DeploymentTarget::kIOS18;
  CompressRunReport report;
  Status st = RunCompress(run, &report);
  CHECK(report.kind == CompressRunReport::Kind::kCheckpoint);
  CHECK(st.message() == "min_target: a checkpoint has no deployment target");

  run.inputs = {SharedModel("mnist")};
  run.packed = true;
  st = RunCompress(run, &report);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() ==
        "packed: only for .safetensors checkpoints (" + SharedModel("mnist") + " is not one)");

  run.packed = false;
  run.inputs = {SharedModel("mnist"), SharedModel("mnist")};
  st = RunCompress(run, &report);
  CHECK(st.message() == "compress: 2 inputs need out_dir (an output names one)");
  CHECK(RunCompress(CompressRun(), &report).message() == "compress: no input");
}

TEST_CASE("RunCompress with an output folder runs a batch; the report's failure leaves the packages",
          "[compress_run]") {
  TempDir tmp;
  CompressRun run;
  run.inputs = {SharedModel("mnist")};
  run.output_dir = tmp.path() + "/out";
  run.options.report_path = tmp.path() + "/no-such-folder/r.json";
  size_t done_calls = 0;
  run.on_done = [&](const BatchResult& r, size_t, size_t) {
    ++done_calls;
    CHECK(r.status.ok());
  };
  CompressRunReport report;
  Status st = RunCompress(run, &report);
  // The report's folder is checked before any work: planning fails, nothing runs.
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(done_calls == 0);
  CHECK(report.kind == CompressRunReport::Kind::kBatch);

  run.options.report_path = tmp.path() + "/r.json";
  st = RunCompress(run, &report);
  INFO(st.message());
  REQUIRE(st.ok());
  CHECK(done_calls == 1);
  CHECK(report.batch.ok == 1);
  CHECK(report.batch_report.ok());
  CHECK(std::filesystem::exists(tmp.path() + "/out/mnist.mlpackage/Manifest.json"));
  CHECK(std::filesystem::file_size(tmp.path() + "/r.json") > 0);
}
