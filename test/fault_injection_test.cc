// Every point where compress (package and checkpoint, dense and --packed, with a report, new and
// --force), decompress and a batch create, write, sync, close, rename, create a folder or set a
// mode, failed in turn (test/fault_env.h): the run fails with one line naming the file, and the
// test folder (the input, any previous output and report) is byte-identical afterwards: no output,
// no report, no stray OUT.partial-XXXXXX or OUT.old-XXXXXX. The points are counted in a clean run
// of the same case first, so a new write point is covered without changing this file.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <functional>
#include <map>

#include "fault_env.h"
#include "palettize/compress_run.h"
#include "palettize/decompress.h"
#include "safetensors/safetensors_writer.h"
#include "test_util.h"
#include "util/file.h"
#include "util/staging.h"

using namespace palettize;
namespace fs = std::filesystem;

namespace {

// Every file and folder under `root`, by relative path: the file's bytes, or "<folder>".
std::map<std::string, std::string> Snapshot(const std::string& root) {
  std::map<std::string, std::string> tree;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string rel = fs::relative(e.path(), root).string();
    if (e.is_directory()) {
      tree[rel] = "<folder>";
    } else {
      std::string bytes;
      REQUIRE(ReadFileToString(e.path().string(), &bytes).ok());
      tree[rel] = bytes;
    }
  }
  return tree;
}

std::vector<std::string> Strays(const std::string& root) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name.find(".partial-") != std::string::npos || name.find(".old-") != std::string::npos)
      found.push_back(e.path().string());
  }
  return found;
}

void CopyModel(const std::string& name, const std::string& dest) {
  fs::create_directories(fs::path(dest).parent_path());
  fs::copy(SharedModel(name), dest, fs::copy_options::recursive);
}

void WriteCheckpoint(const std::string& path) { WriteTestCheckpoint(path, 12345); }

// One case: `setup` fills a fresh folder (inputs, and previous outputs when it replaces them);
// `run` does the command there and returns its Status and the paths it writes (outputs, report).
struct Case {
  std::function<void(const std::string& dir)> setup;
  std::function<Status(const std::string& dir, std::vector<std::string>* targets)> run;
};

Case PackageCase(bool force) {
  return {[force](const std::string& dir) {
            CopyModel("activity_fp16", dir + "/in.mlpackage");
            if (force) {  // a previous output and report, to be kept as they were on a failure
              CopyModel("activity_fp32", dir + "/out.mlpackage");
              REQUIRE(WriteStringToFile(dir + "/r.json", "previous report\n").ok());
            }
          },
          [force](const std::string& dir, std::vector<std::string>* targets) {
            *targets = {dir + "/out.mlpackage", dir + "/r.json"};
            CompressRunReport report;
            return RunCompress(
                SmallRun(dir + "/in.mlpackage", dir + "/out.mlpackage", dir + "/r.json", force), &report);
          }};
}

Case CheckpointCase(bool packed, bool force) {
  return {[force](const std::string& dir) {
            WriteCheckpoint(dir + "/m.safetensors");
            if (force) {
              REQUIRE(WriteStringToFile(dir + "/out.safetensors", "previous output").ok());
              REQUIRE(WriteStringToFile(dir + "/r.json", "previous report\n").ok());
            }
          },
          [packed, force](const std::string& dir, std::vector<std::string>* targets) {
            *targets = {dir + "/out.safetensors", dir + "/r.json"};
            CompressRun run =
                SmallRun(dir + "/m.safetensors", dir + "/out.safetensors", dir + "/r.json", force);
            run.packed = packed;
            CompressRunReport report;
            return RunCompress(run, &report);
          }};
}

Case DecompressCase() {
  return {
      [](const std::string& dir) {
        CopyModel("activity_fp16", dir + "/src.mlpackage");
        CompressRunReport report;
        REQUIRE(
            RunCompress(SmallRun(dir + "/src.mlpackage", dir + "/in.mlpackage", "", false), &report).ok());
        REQUIRE(report.package.palettized == 2);
        fs::remove_all(dir + "/src.mlpackage");
      },
      [](const std::string& dir, std::vector<std::string>* targets) {
        *targets = {dir + "/out.mlpackage"};
        DecompressReport report;
        return Decompress(dir + "/in.mlpackage", dir + "/out.mlpackage", DecompressOptions(), &report);
      }};
}

// Runs `c` once cleanly, counting each kind of call, then once per call with that call failing.
void FailEachPoint(const Case& c, int err = EIO) {
  std::map<FaultOp, int> points;
  {
    TempDir dir;
    c.setup(dir.path());
    FaultEnv counting;
    std::vector<std::string> targets;
    Status st;
    {
      ScopedEnvForTesting scoped(&counting);
      st = c.run(dir.path(), &targets);
    }
    INFO(st.message());
    REQUIRE(st.ok());
    for (FaultOp op : kFaultOps) points[op] = counting.calls(op);
  }
  // Each case creates, writes, syncs, closes and renames: a case counting none of them would
  // test nothing.
  for (FaultOp op : {FaultOp::kCreate, FaultOp::kWrite, FaultOp::kSync, FaultOp::kClose, FaultOp::kRename}) {
    INFO(FaultOpName(op));
    REQUIRE(points[op] > 0);
  }
  for (const auto& [op, count] : points) {
    for (int n = 1; n <= count; ++n) {
      INFO(FaultOpName(op) << " " << n << " of " << count);
      TempDir dir;
      c.setup(dir.path());
      const auto before = Snapshot(dir.path());
      FaultEnv faulty(op, n, err);
      std::vector<std::string> targets;
      Status st;
      {
        ScopedEnvForTesting scoped(&faulty);
        st = c.run(dir.path(), &targets);
      }
      INFO(st.message());
      REQUIRE(faulty.fired());
      REQUIRE(!st.ok());
      CHECK(st.message().find('\n') == std::string::npos);
      CHECK(st.message().find(std::strerror(err)) != std::string::npos);
      bool named = false;
      for (const std::string& t : targets) named = named || st.message().find(t) != std::string::npos;
      CHECK(named);
      CHECK(Strays(dir.path()).empty());
      CHECK(Snapshot(dir.path()) == before);  // the input, any previous output: as they were
    }
  }
}

// The portable commit (staging.h) for the scope, even when a REQUIRE ends the test.
struct WithoutRenameat2 {
  WithoutRenameat2() { DisableRenameat2ForTesting(true); }
  ~WithoutRenameat2() { DisableRenameat2ForTesting(false); }
};

}  // namespace

TEST_CASE("faults: compress of a package, each create, write, sync, close, rename, mkdir and chmod failed") {
  SECTION("new output and report") { FailEachPoint(PackageCase(false)); }
  SECTION("--force over a previous output and report") { FailEachPoint(PackageCase(true)); }
  SECTION("--force on a file system without renameat2") {
    WithoutRenameat2 portable;
    FailEachPoint(PackageCase(true));
  }
  SECTION("a full disk (ENOSPC)") { FailEachPoint(PackageCase(false), ENOSPC); }
}

TEST_CASE("faults: compress of a checkpoint, dense and packed, each point failed") {
  SECTION("dense, new") { FailEachPoint(CheckpointCase(false, false)); }
  SECTION("dense, --force") { FailEachPoint(CheckpointCase(false, true)); }
  SECTION("packed, new") { FailEachPoint(CheckpointCase(true, false)); }
  SECTION("packed, --force") { FailEachPoint(CheckpointCase(true, true)); }
  SECTION("packed, --force without renameat2") {
    WithoutRenameat2 portable;
    FailEachPoint(CheckpointCase(true, true));
  }
}

TEST_CASE("faults: decompress, each point failed") { FailEachPoint(DecompressCase()); }

// A batch is N runs and then its report: a model whose write fails fails alone (its output is not
// there, and the models before it are complete), and a report that fails is not there.
TEST_CASE("faults: a batch (compress --output-dir), each point failed") {
  auto setup = [](const std::string& dir) {
    CopyModel("activity_fp16", dir + "/zoo/a/one.mlpackage");
    CopyModel("activity_fp32", dir + "/zoo/b/two.mlpackage");
  };
  auto run = [](const std::string& dir, CompressRunReport* report) {
    CompressRun r = SmallRun(dir + "/zoo", "", dir + "/batch.json", false);
    r.output_dir = dir + "/out";
    return RunCompress(r, report);
  };
  std::map<FaultOp, int> points;
  {
    TempDir dir;
    setup(dir.path());
    FaultEnv counting;
    CompressRunReport report;
    {
      ScopedEnvForTesting scoped(&counting);
      REQUIRE(run(dir.path(), &report).ok());
    }
    REQUIRE(report.batch.ok == 2);
    REQUIRE(report.batch_report.ok());
    for (FaultOp op : kFaultOps) points[op] = counting.calls(op);
  }
  for (const auto& [op, count] : points) {
    for (int n = 1; n <= count; ++n) {
      INFO(FaultOpName(op) << " " << n << " of " << count);
      TempDir dir;
      setup(dir.path());
      const auto inputs = Snapshot(dir.path() + "/zoo");
      FaultEnv faulty(op, n);
      CompressRunReport report;
      Status st;
      {
        ScopedEnvForTesting scoped(&faulty);
        st = run(dir.path(), &report);
      }
      INFO(st.message());
      REQUIRE(faulty.fired());
      REQUIRE(st.ok());  // planning writes nothing; each model's failure is its own
      int failures = report.batch_report.ok() ? 0 : 1;
      if (!report.batch_report.ok()) {
        INFO(report.batch_report.message());
        CHECK(report.batch_report.message().find(dir.path() + "/batch.json") != std::string::npos);
        CHECK(!PathExists(dir.path() + "/batch.json"));
      }
      for (const BatchResult& m : report.batch.models) {
        INFO(m.status.message());
        if (m.status.ok()) {
          CHECK(PathExists(m.item.output + "/Manifest.json"));
          continue;
        }
        ++failures;
        CHECK(m.status.message().find('\n') == std::string::npos);
        CHECK(m.status.message().find(dir.path() + "/out") != std::string::npos);
        CHECK(m.status.message().find(std::strerror(EIO)) != std::string::npos);
        CHECK(!PathExists(m.item.output));
      }
      CHECK(failures == 1);
      CHECK(Strays(dir.path()).empty());
      CHECK(Snapshot(dir.path() + "/zoo") == inputs);
    }
  }
}
