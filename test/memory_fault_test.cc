// Compress (a package and a checkpoint), decompress and a batch, run entirely inside the in-memory
// Env (memory_env.h):
//   - every create, write, sync, close, rename, mkdir and chmod failed in turn: the run fails with
//     one line naming the file; the tree is as before (the input, a previous output and report);
//     no stray OUT.partial-XXXXXX or OUT.old-XXXXXX; no descriptor or mapping left open;
//   - a crash before every mutating call (and one after the last): what survives (every name, only
//     the synced bytes) holds each output either as it was before the run or complete, byte for
//     byte the output of a run without a crash, and read back by the library; never half of one;
//   - hostile paths the memory Env makes cheap: a link out of the input, a FIFO for a weight file,
//     an output that is the input or lies inside it, a report on a full device, a full disk.
// The points are counted in a clean run of each case first, so a new one is covered unchanged.
#include <catch2/catch.hpp>

#include <cstring>
#include <functional>
#include <map>

#include <nlohmann/json.hpp>

#include "memory_env.h"
#include "palettize/compress_run.h"
#include "palettize/decompress.h"
#include "palettize/inspect.h"
#include "safetensors/safetensors.h"
#include "safetensors/safetensors_writer.h"
#include "test_util.h"
#include "util/file.h"
#include "util/staging.h"

using namespace palettize;

namespace {

const std::string kDir = "/work";  // the test's folder inside the memory Env

void WriteCheckpoint(const std::string& path) { WriteTestCheckpoint(path, 777); }

// What a target must be after a crash, if it is the new one: a package or checkpoint byte for
// byte the clean run's; a report, JSON (its timings differ from run to run).
enum class Check { kExact, kJson };

struct Target {
  std::string path;
  Check check;
};

// One case: `setup` fills kDir (through the Env in use: it is the memory Env by then); `run`
// does the command.
struct Case {
  std::function<void()> setup;
  std::function<Status()> run;
  std::vector<Target> targets;
  std::string input;  // unchanged by every run
};

// A fresh memory Env with the case set up and counts zeroed.
std::unique_ptr<MemoryEnv> Prepared(const Case& c) {
  auto env = std::make_unique<MemoryEnv>();
  env->AddFolder(kDir);
  ScopedEnvForTesting scoped(env.get());
  c.setup();
  env->SyncAll();
  env->ResetCounts();
  return env;
}

Status RunIn(MemoryEnv* env, const Case& c) {
  ScopedEnvForTesting scoped(env);
  return c.run();
}

std::vector<std::string> Strays(MemoryEnv* env) {
  std::vector<std::string> found;
  for (const std::string& p : env->AllPaths())
    if (p.find(".partial-") != std::string::npos || p.find(".old-") != std::string::npos) found.push_back(p);
  return found;
}

// The number of calls of each kind, and of mutations, in a run without faults.
struct Points {
  std::map<FaultOp, int> calls;
  int mutations = 0;
};

Points CountPoints(const Case& c) {
  auto env = Prepared(c);
  const Status st = RunIn(env.get(), c);
  INFO(st.message());
  REQUIRE(st.ok());
  Points p;
  for (FaultOp op : kFaultOps) p.calls[op] = env->calls(op);
  p.mutations = env->mutations();
  // Each case creates, writes, syncs, closes and renames: one counting none would test nothing.
  for (FaultOp op : {FaultOp::kCreate, FaultOp::kWrite, FaultOp::kSync, FaultOp::kClose, FaultOp::kRename}) {
    INFO(FaultOpName(op));
    REQUIRE(p.calls[op] > 0);
  }
  CHECK(env->open_descriptors() == 0);
  CHECK(env->open_maps() == 0);
  return p;
}

// Fails each counted call in turn; returns how many runs failed.
int FailEachPoint(const Case& c, int err = EIO) {
  const Points points = CountPoints(c);
  int runs = 0;
  for (const auto& [op, count] : points.calls) {
    for (int n = 1; n <= count; ++n, ++runs) {
      INFO(FaultOpName(op) << " " << n << " of " << count);
      auto env = Prepared(c);
      const auto before = env->Snapshot(kDir);
      env->FailCall(op, n, err);
      const Status st = RunIn(env.get(), c);
      INFO(st.message());
      REQUIRE(env->fired());
      REQUIRE(!st.ok());
      CHECK(st.message().find('\n') == std::string::npos);
      CHECK(st.message().find(std::strerror(err)) != std::string::npos);
      bool named = false;
      for (const Target& t : c.targets) named = named || st.message().find(t.path) != std::string::npos;
      CHECK(named);
      CHECK(Strays(env.get()).empty());
      CHECK(env->Snapshot(kDir) == before);
      CHECK(env->open_descriptors() == 0);
      CHECK(env->open_maps() == 0);
    }
  }
  return runs;
}

// A new target, read back by the library inside `env`.
void CheckReadable(MemoryEnv* env, const Target& t) {
  ScopedEnvForTesting scoped(env);
  if (t.check == Check::kJson) {
    const auto j = nlohmann::json::parse(env->Contents(t.path), nullptr, /*allow_exceptions=*/false);
    CHECK((j.is_object() && !j.empty()));
  } else if (t.path.size() > 12 && t.path.compare(t.path.size() - 12, 12, ".safetensors") == 0) {
    SafeTensorsFile f;
    const Status st = f.Open(t.path);
    INFO(st.message());
    CHECK(st.ok());
  } else {
    ModelInfo info;
    const Status st = Inspect(t.path, InspectOptions(), &info);
    INFO(st.message());
    CHECK(st.ok());
    CHECK(!info.weights.empty());
  }
}

// Crashes before each mutating call, and after the last; returns the number of crash points.
int CrashEachPoint(const Case& c) {
  const Points points = CountPoints(c);
  std::map<std::string, std::map<std::string, std::string>> complete;  // each target, new
  {
    auto env = Prepared(c);
    REQUIRE(RunIn(env.get(), c).ok());
    env->SimulateCrash();  // a crash just after the run: everything it committed is durable
    for (const Target& t : c.targets) {
      INFO(t.path);
      complete[t.path] = env->Snapshot(t.path);
      REQUIRE(!complete[t.path].empty());
      CheckReadable(env.get(), t);
    }
  }
  std::map<std::string, int> kept, replaced;  // crash points leaving each target as before, new
  for (int n = 1; n <= points.mutations + 1; ++n) {
    INFO("crash before mutation " << n << " of " << points.mutations);
    auto env = Prepared(c);
    const auto input = env->Snapshot(c.input);
    std::map<std::string, std::map<std::string, std::string>> before;
    for (const Target& t : c.targets) before[t.path] = env->Snapshot(t.path);
    env->CrashAtMutation(n);
    (void)RunIn(env.get(), c);
    CHECK(env->fired() == (n <= points.mutations));
    env->SimulateCrash();
    CHECK(env->Snapshot(c.input) == input);
    for (const Target& t : c.targets) {
      INFO(t.path);
      const auto now = env->Snapshot(t.path);
      if (now == before[t.path]) {  // absent, or the previous one
        ++kept[t.path];
        continue;
      }
      if (now.empty()) {
        // Absent: only in the portable commit's window (the previous target moved aside, the new
        // one not yet in its place), and then the previous one is whole at OUT.old-XXXXXX.
        bool aside = false;
        for (const std::string& p : env->AllPaths())
          aside = aside || (p.rfind(t.path + ".old-", 0) == 0 && env->Snapshot(p) == before[t.path]);
        CHECK(aside);
        continue;
      }
      ++replaced[t.path];
      if (t.check == Check::kExact) {
        CHECK(now == complete[t.path]);
      } else {
        CheckReadable(env.get(), t);
      }
    }
  }
  // The first crash point leaves every target as it was, the last (after the run) every one new.
  for (const Target& t : c.targets) {
    INFO(t.path);
    CHECK(kept[t.path] > 0);
    CHECK(replaced[t.path] > 0);
  }
  return points.mutations + 1;
}

Case PackageCase(const std::string& model, bool force) {
  const std::string in = kDir + "/in.mlpackage", out = kDir + "/out.mlpackage", report = kDir + "/r.json";
  return {[=] {
            auto* env = static_cast<MemoryEnv*>(Env::Current());
            env->CopyIn(SharedModel(model), in);
            if (force) {  // a previous output and report, to be kept as they were on a failure
              env->CopyIn(SharedModel("activity_fp32"), out);
              env->AddFile(report, "previous report\n");
            }
          },
          [=] {
            CompressRunReport r;
            return RunCompress(SmallRun(in, out, report, force), &r);
          },
          {{out, Check::kExact}, {report, Check::kJson}},
          in};
}

Case CheckpointCase(bool packed, bool force) {
  const std::string in = kDir + "/m.safetensors", out = kDir + "/out.safetensors", report = kDir + "/r.json";
  return {[=] {
            WriteCheckpoint(in);
            if (force) {
              REQUIRE(WriteStringToFile(out, "previous output").ok());
              REQUIRE(WriteStringToFile(report, "previous report\n").ok());
            }
          },
          [=] {
            CompressRun run = SmallRun(in, out, report, force);
            run.packed = packed;
            CompressRunReport r;
            return RunCompress(run, &r);
          },
          {{out, Check::kExact}, {report, Check::kJson}},
          in};
}

Case DecompressCase() {
  const std::string in = kDir + "/in.mlpackage", out = kDir + "/out.mlpackage";
  return {[=] {
            auto* env = static_cast<MemoryEnv*>(Env::Current());
            env->CopyIn(SharedModel("activity_fp16"), kDir + "/src.mlpackage");
            CompressRunReport r;
            REQUIRE(RunCompress(SmallRun(kDir + "/src.mlpackage", in, "", false), &r).ok());
            REQUIRE(r.package.palettized == 2);
            env->RemoveTree(kDir + "/src.mlpackage");
          },
          [=] {
            DecompressReport r;
            return Decompress(in, out, DecompressOptions(), &r);
          },
          {{out, Check::kExact}},
          in};
}

// Two models in folders of their own, compressed into --output-dir with a batch report.
Case BatchCase() {
  const std::string zoo = kDir + "/zoo", out = kDir + "/out", report = kDir + "/batch.json";
  return {[=] {
            auto* env = static_cast<MemoryEnv*>(Env::Current());
            env->CopyIn(SharedModel("activity_fp16"), zoo + "/a/one.mlpackage");
            env->CopyIn(SharedModel("activity_fp32"), zoo + "/b/two.mlpackage");
          },
          [=] {
            CompressRun r = SmallRun(zoo, "", report, false);
            r.output_dir = out;
            CompressRunReport rep;
            Status st = RunCompress(r, &rep);
            if (!st.ok()) return st;
            // The batch's Status is OK whatever its models did: the first failure, for the checks.
            for (const BatchResult& m : rep.batch.models)
              if (!m.status.ok()) return m.status;
            return rep.batch_report;
          },
          {{out + "/a/one.mlpackage", Check::kExact},
           {out + "/b/two.mlpackage", Check::kExact},
           {report, Check::kJson}},
          zoo};
}

// The portable commit (util/staging.h) for the scope, even when a REQUIRE ends the test.
struct WithoutRenameat2 {
  WithoutRenameat2() { DisableRenameat2ForTesting(true); }
  ~WithoutRenameat2() { DisableRenameat2ForTesting(false); }
};

}  // namespace

TEST_CASE("memory faults: compress of a package, each point failed, and a crash at each") {
  SECTION("new output and report") {
    CHECK(FailEachPoint(PackageCase("activity_fp16", false)) > 0);
    CHECK(CrashEachPoint(PackageCase("activity_fp16", false)) > 0);
  }
  SECTION("--force over a previous output and report") {
    CHECK(FailEachPoint(PackageCase("activity_fp16", true)) > 0);
    CHECK(CrashEachPoint(PackageCase("activity_fp16", true)) > 0);
  }
  SECTION("--force on a file system without renameat2") {
    WithoutRenameat2 portable;
    CHECK(FailEachPoint(PackageCase("activity_fp16", true)) > 0);
    CHECK(CrashEachPoint(PackageCase("activity_fp16", true)) > 0);
  }
  SECTION("a larger model (mnist), new output") {
    CHECK(FailEachPoint(PackageCase("mnist", false)) > 0);
    CHECK(CrashEachPoint(PackageCase("mnist", false)) > 0);
  }
  SECTION("a full disk (ENOSPC at each point)") {
    CHECK(FailEachPoint(PackageCase("activity_fp16", false), ENOSPC) > 0);
  }
}

TEST_CASE(
    "memory faults: compress of a checkpoint, dense and packed, each point failed, and a crash at each") {
  for (bool packed : {false, true}) {
    for (bool force : {false, true}) {
      INFO((packed ? "packed" : "dense") << (force ? ", --force" : ", new"));
      CHECK(FailEachPoint(CheckpointCase(packed, force)) > 0);
      CHECK(CrashEachPoint(CheckpointCase(packed, force)) > 0);
    }
  }
  WithoutRenameat2 portable;
  CHECK(FailEachPoint(CheckpointCase(true, true)) > 0);
  CHECK(CrashEachPoint(CheckpointCase(true, true)) > 0);
}

TEST_CASE("memory faults: decompress, each point failed, and a crash at each") {
  CHECK(FailEachPoint(DecompressCase()) > 0);
  CHECK(CrashEachPoint(DecompressCase()) > 0);
}

// A batch is several runs: a model that fails fails alone, so each failed point leaves exactly
// one output or the report missing, and the others complete.
TEST_CASE("memory faults: a batch, each point failed, and a crash at each") {
  const Case c = BatchCase();
  const Points points = CountPoints(c);
  for (const auto& [op, count] : points.calls) {
    for (int n = 1; n <= count; ++n) {
      INFO(FaultOpName(op) << " " << n << " of " << count);
      auto env = Prepared(c);
      const auto inputs = env->Snapshot(c.input);
      env->FailCall(op, n, EIO);
      const Status st = RunIn(env.get(), c);
      INFO(st.message());
      REQUIRE(env->fired());
      REQUIRE(!st.ok());
      CHECK(st.message().find('\n') == std::string::npos);
      CHECK(st.message().find(std::strerror(EIO)) != std::string::npos);
      CHECK((st.message().find(kDir + "/out") != std::string::npos ||
             st.message().find(kDir + "/batch.json") != std::string::npos));
      int missing = 0;
      for (const Target& t : c.targets) {
        if (!env->Exists(t.path)) {
          ++missing;
          continue;
        }
        INFO(t.path);
        CheckReadable(env.get(), t);
      }
      CHECK(missing == 1);
      CHECK(Strays(env.get()).empty());
      CHECK(env->Snapshot(c.input) == inputs);
      CHECK(env->open_descriptors() == 0);
    }
  }
  CHECK(CrashEachPoint(c) > 0);
}

// ---- Hostile paths: each refused before anything is written.

namespace {

// Runs `c` in a prepared Env; the run must fail with a message holding `says`, write nothing
// and change nothing.
void Refused(const Case& c, const std::function<void(MemoryEnv*)>& plant, const std::string& says) {
  auto env = Prepared(c);
  plant(env.get());
  const auto before = env->Snapshot("/");
  const Status st = RunIn(env.get(), c);
  INFO(st.message());
  REQUIRE(!st.ok());
  CHECK(st.message().find(says) != std::string::npos);
  CHECK(st.message().find('\n') == std::string::npos);
  CHECK(env->Snapshot("/") == before);
  CHECK(env->open_descriptors() == 0);
}

}  // namespace

TEST_CASE("memory faults: hostile inputs and paths are refused, nothing written") {
  const Case c = PackageCase("activity_fp16", false);
  const std::string weights = kDir + "/in.mlpackage/Data/com.apple.CoreML/weights";
  SECTION("a link inside the package pointing out of it") {
    Refused(
        c,
        [&](MemoryEnv* env) {
          env->AddFile("/secret/weight.bin", env->Contents(weights + "/weight.bin"));
          env->RemoveTree(weights + "/weight.bin");
          env->AddLink(weights + "/weight.bin", "/secret/weight.bin");
        },
        "weight.bin: is a symbolic link; links inside a package are not followed");
  }
  SECTION("a linked folder inside the package") {
    Refused(
        c,
        [&](MemoryEnv* env) {
          env->Rename(weights, "/elsewhere");
          env->AddLink(weights, "/elsewhere");
        },
        "weights: is a symbolic link");
  }
  SECTION("a FIFO where the weight file is expected") {
    Refused(
        c,
        [&](MemoryEnv* env) {
          env->RemoveTree(weights + "/weight.bin");
          env->AddSpecial(weights + "/weight.bin", MemoryEnv::Kind::kFifo);
        },
        "weight.bin: is a FIFO");
  }
  SECTION("the output is the input, by another spelling and through a link") {
    for (const std::string& out :
         {kDir + "/in.mlpackage", kDir + "/./sub/../in.mlpackage/", kDir + "/alias"}) {
      INFO(out);
      Case same = c;
      same.run = [out] {
        CompressRunReport r;
        return RunCompress(SmallRun(kDir + "/in.mlpackage", out, "", true), &r);
      };
      Refused(
          same,
          [](MemoryEnv* env) {
            env->AddFolder(kDir + "/sub");
            env->AddLink(kDir + "/alias", "in.mlpackage");
          },
          "the output is the input");
    }
  }
  SECTION("the output lies inside the input") {
    Case inside = c;
    inside.run = [] {
      CompressRunReport r;
      return RunCompress(
          SmallRun(kDir + "/in.mlpackage", kDir + "/in.mlpackage/Data/out.mlpackage", "", false), &r);
    };
    Refused(
        inside, [](MemoryEnv*) {}, "lies inside the input");
  }
  SECTION("the report is the input's manifest") {
    Case report = c;
    report.run = [] {
      CompressRunReport r;
      return RunCompress(SmallRun(kDir + "/in.mlpackage", kDir + "/out.mlpackage",
                                  kDir + "/in.mlpackage/Manifest.json", false),
                         &r);
    };
    Refused(
        report, [](MemoryEnv*) {}, "the report lies inside the input");
  }
}

TEST_CASE("memory faults: a report on a full device fails before the package is committed") {
  Case c = PackageCase("activity_fp16", false);
  c.run = [] {
    CompressRunReport r;
    return RunCompress(SmallRun(kDir + "/in.mlpackage", kDir + "/out.mlpackage", "/dev/full", false), &r);
  };
  auto env = Prepared(c);
  env->AddSpecial("/dev/full", MemoryEnv::Kind::kFullDevice);
  const auto before = env->Snapshot("/");
  const Status st = RunIn(env.get(), c);
  INFO(st.message());
  REQUIRE(!st.ok());
  CHECK(st.message().find("/dev/full") != std::string::npos);
  CHECK(st.message().find(std::strerror(ENOSPC)) != std::string::npos);
  CHECK(env->Snapshot("/") == before);  // no package; the device is still a device
}

TEST_CASE("memory faults: a disk that fills up at any size fails cleanly") {
  const Case c = PackageCase("mnist", false);
  uint64_t input, written;
  {
    auto env = Prepared(c);
    input = env->used_bytes();
    REQUIRE(RunIn(env.get(), c).ok());
    written = env->used_bytes() - input;  // the package and the report
    REQUIRE(written > 1000);
  }
  // Room for the input and a part of what the run writes: each part fails cleanly.
  for (uint64_t room : {uint64_t(0), uint64_t(100), written / 4, written / 2, written * 3 / 4}) {
    INFO("room for " << room << " of " << written << " bytes");
    auto env = Prepared(c);
    env->SetSpaceLimit(input + room);
    const auto before = env->Snapshot(kDir);
    const Status st = RunIn(env.get(), c);
    INFO(st.message());
    REQUIRE(!st.ok());
    CHECK(st.message().find(std::strerror(ENOSPC)) != std::string::npos);
    CHECK((st.message().find(kDir + "/out.mlpackage") != std::string::npos ||
           st.message().find(kDir + "/r.json") != std::string::npos));
    CHECK(Strays(env.get()).empty());
    CHECK(env->Snapshot(kDir) == before);
  }
}
