// Batch: which packages a list of arguments names, where their outputs go, and a run in which
// one model fails.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "palettize/batch.h"
#include "test_util.h"

using namespace palettize;
namespace fs = std::filesystem;

namespace {

// A copy of a model of ../shared/models at `dest` (parents created).
void CopyModel(const std::string& name, const fs::path& dest) {
  fs::create_directories(dest.parent_path());
  fs::copy(SharedModel(name), dest, fs::copy_options::recursive);
}

// zoo/mnist.mlpackage, zoo/audio/activity_fp16.mlpackage, zoo/video/keras_video.mlpackage,
// zoo/video/nested/activity_fp32.mlpackage, and a file that is not a package.
std::string MakeZoo(const std::string& root) {
  const fs::path zoo = fs::path(root) / "zoo";
  const std::pair<const char*, const char*> models[] = {
      {"mnist", ""}, {"activity_fp16", "audio"}, {"keras_video", "video"}, {"activity_fp32", "video/nested"}};
  for (const auto& [name, dir] : models) {
    CopyModel(name, zoo / dir / (std::string(name) + ".mlpackage"));
  }
  std::ofstream(zoo / "README.txt") << "not a model\n";
  return zoo.string();
}

// The options of `compress --output-dir` as PlanBatch reads them: --force or not.
CompressOptions Force(bool force) {
  CompressOptions o;
  o.overwrite = force;
  return o;
}

std::vector<std::string> Outputs(const std::vector<BatchItem>& items) {
  std::vector<std::string> out;
  for (const BatchItem& i : items) out.push_back(i.output);
  return out;
}

}  // namespace

TEST_CASE("a folder is searched recursively and its layout mirrored under OUT", "[batch]") {
  TempDir tmp;
  const std::string zoo = MakeZoo(tmp.path());
  std::vector<BatchItem> items;
  REQUIRE(PlanBatch({zoo}, tmp.path() + "/out", Force(false), &items).ok());
  const std::string out = tmp.path() + "/out/";
  CHECK(Outputs(items) == std::vector<std::string>{out + "audio/activity_fp16.mlpackage",
                                                   out + "mnist.mlpackage",
                                                   out + "video/keras_video.mlpackage",
                                                   out + "video/nested/activity_fp32.mlpackage"});
  CHECK(items[1].input == zoo + "/mnist.mlpackage");
}

TEST_CASE("packages named directly go to OUT/<name>; one reached twice is listed once", "[batch]") {
  TempDir tmp;
  const std::string zoo = MakeZoo(tmp.path());
  std::vector<BatchItem> items;
  REQUIRE(PlanBatch({zoo + "/video/keras_video.mlpackage/", zoo + "/mnist.mlpackage", zoo + "/video"},
                    tmp.path() + "/out", Force(false), &items)
              .ok());
  CHECK(Outputs(items) == std::vector<std::string>{tmp.path() + "/out/keras_video.mlpackage",
                                                   tmp.path() + "/out/mnist.mlpackage",
                                                   tmp.path() + "/out/nested/activity_fp32.mlpackage"});
}

TEST_CASE("two inputs with one output are refused before any work", "[batch]") {
  TempDir tmp;
  for (const char* dir : {"a", "b"}) CopyModel("activity_fp16", tmp.path() + "/" + dir + "/m.mlpackage");
  std::vector<BatchItem> items;
  const std::string a = tmp.path() + "/a/m.mlpackage", b = tmp.path() + "/b/m.mlpackage";
  Status st = PlanBatch({a, b}, tmp.path() + "/out", Force(false), &items);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == tmp.path() + "/out/m.mlpackage: output of both " + a + " and " + b +
                            " (rename one, or pass the folder holding both: sub-folders are mirrored)");
  // Their common parent mirrors them apart.
  REQUIRE(PlanBatch({tmp.path()}, tmp.path() + "/out", Force(false), &items).ok());
  CHECK(Outputs(items) ==
        std::vector<std::string>{tmp.path() + "/out/a/m.mlpackage", tmp.path() + "/out/b/m.mlpackage"});
  CHECK_FALSE(fs::exists(tmp.path() + "/out"));
}

TEST_CASE("planning errors: missing path, empty folder, existing output, output over input", "[batch]") {
  TempDir tmp;
  std::vector<BatchItem> items;
  Status st = PlanBatch({tmp.path() + "/nope"}, tmp.path() + "/out", Force(false), &items);
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message() == tmp.path() + "/nope: no such package or folder");

  fs::create_directories(tmp.path() + "/empty/sub");
  st = PlanBatch({tmp.path() + "/empty"}, tmp.path() + "/out", Force(false), &items);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == tmp.path() + "/empty: no .mlpackage in this folder");

  CopyModel("activity_fp16", tmp.path() + "/in/m.mlpackage");
  fs::create_directories(tmp.path() + "/out/m.mlpackage");
  std::ofstream(tmp.path() + "/out/m.mlpackage/Manifest.json") << "{}";
  st = PlanBatch({tmp.path() + "/in"}, tmp.path() + "/out", Force(false), &items);
  CHECK(st.message() == tmp.path() + "/out/m.mlpackage: already exists (use overwrite to replace it)");
  CHECK(PlanBatch({tmp.path() + "/in"}, tmp.path() + "/out", Force(true), &items).ok());

  st = PlanBatch({tmp.path() + "/in/m.mlpackage"}, tmp.path() + "/in", Force(true), &items);
  CHECK(st.message() == tmp.path() + "/in: out_dir holds the input " + tmp.path() +
                            "/in/m.mlpackage; write to another folder");
  st = PlanBatch({tmp.path() + "/in/m.mlpackage"}, tmp.path() + "/in/m.mlpackage/Data", Force(true), &items);
  CHECK(st.message() == tmp.path() + "/in/m.mlpackage/Data: out_dir lies inside the input " + tmp.path() +
                            "/in/m.mlpackage; write outside it");
  // Every input counts, not only the one an output is for.
  CopyModel("mnist", tmp.path() + "/in2/mnist.mlpackage");
  st = PlanBatch({tmp.path() + "/in2/mnist.mlpackage", tmp.path() + "/in/m.mlpackage"},
                 tmp.path() + "/in2/mnist.mlpackage/Data/weights", Force(true), &items);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == tmp.path() + "/in2/mnist.mlpackage/Data/weights: out_dir lies inside the input " +
                            tmp.path() + "/in2/mnist.mlpackage; write outside it");
}

TEST_CASE("the output folder is not searched for inputs", "[batch]") {
  TempDir tmp;
  const std::string zoo = MakeZoo(tmp.path());
  CopyModel("mnist", zoo + "/out/old.mlpackage");
  std::vector<BatchItem> items;
  REQUIRE(PlanBatch({zoo}, zoo + "/out", Force(false), &items).ok());
  CHECK(items.size() == 4);
}

TEST_CASE("a failing model does not stop the others and leaves nothing behind", "[batch]") {
  TempDir tmp;
  const std::string zoo = MakeZoo(tmp.path());
  fs::create_directories(zoo + "/broken/bad.mlpackage");  // no Manifest.json
  std::vector<BatchItem> items;
  REQUIRE(PlanBatch({zoo}, tmp.path() + "/out", Force(false), &items).ok());
  REQUIRE(items.size() == 5);
  BatchOptions options;
  options.compress.config.global_config = PalettizeConfig();
  options.compress.config.global_config->nbits = 4;
  options.compress.config.global_config->weight_threshold = 0;
  options.jobs = 2;
  size_t calls = 0;
  options.on_done = [&](const BatchResult&, size_t done, size_t total) {
    ++calls;
    CHECK(done == calls);
    CHECK(total == 5);
  };
  BatchReport report;
  CompressBatch(items, options, &report);
  CHECK(calls == 5);
  CHECK(report.ok == 4);
  CHECK(report.failed == 1);
  REQUIRE(report.models.size() == 5);
  const BatchResult& bad = report.models[1];
  CHECK(bad.item.input == zoo + "/broken/bad.mlpackage");
  CHECK_FALSE(bad.status.ok());
  CHECK(BatchErrorText(bad).rfind(zoo + "/broken/bad.mlpackage", 0) == 0);
  CHECK_FALSE(fs::exists(tmp.path() + "/out/broken"));
  for (const BatchResult& m : report.models)
    if (m.status.ok()) CHECK(fs::exists(m.item.output + "/Manifest.json"));
  CHECK(report.bytes_after < report.bytes_before);

  const std::string json = BatchReportToJson(report, false);
  CHECK(json.find("\"status\": \"failed\"") != std::string::npos);
  CHECK(json.find("\"error_kind\": \"invalid_input\"") != std::string::npos);
  CHECK(json.find("wall_seconds") == std::string::npos);
  const std::string summary = BatchSummary(report);
  CHECK(summary.find("compressed 4 of 5 models: ") == 0);
  CHECK(summary.find("failed 1 of 5 models:\n  " + BatchErrorText(bad) + "\n") != std::string::npos);
}
