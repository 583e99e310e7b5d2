// util/staging.h: staged outputs, their commit as a set, and the rollback when a rename fails.
#include "util/staging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "memory_env.h"
#include "test_util.h"
#include "util/file.h"
#include "util/safe_input.h"

namespace fs = std::filesystem;
using palettize::CommitStaged;
using palettize::StagedOutput;

namespace {

std::string Read(const std::string& path) {
  std::string text;
  REQUIRE(palettize::ReadFileToString(path, &text).ok());
  return text;
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Stages `text` as the new contents of file `target`.
void StageFile(const std::string& target, const std::string& text, bool overwrite, StagedOutput* out) {
  REQUIRE(out->Begin(target, StagedOutput::Kind::kFile, overwrite).ok());
  REQUIRE(::write(out->fd(), text.data(), text.size()) == ssize_t(text.size()));
}

// Stages a package-like folder holding `file` with `text`.
void StageFolder(const std::string& target, const std::string& text, bool overwrite, StagedOutput* out) {
  REQUIRE(out->Begin(target, StagedOutput::Kind::kFolder, overwrite).ok());
  REQUIRE(palettize::MakeFolders(out->path(), "Data/sub").ok());
  REQUIRE(palettize::WriteNewFile(out->path() + "/Data/sub/file", text).ok());
}

std::vector<std::string> Names(const std::string& folder) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(folder)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("staging: a set is committed together, replacing the previous targets") {
  TempDir dir;
  const std::string pkg = dir.path() + "/out.mlpackage", report = dir.path() + "/report.json";
  fs::create_directories(pkg + "/Data/sub");
  Write(pkg + "/Data/sub/file", "old");
  Write(report, "old report");
  StagedOutput a, b;
  StageFolder(pkg, "new", true, &a);
  StageFile(report, "new report", true, &b);
  CHECK(a.path().rfind(pkg + ".partial-", 0) == 0);
  CHECK(Names(dir.path()).size() == 4);  // both targets and both temporaries
  REQUIRE(CommitStaged({&a, &b}).ok());
  CHECK(Read(pkg + "/Data/sub/file") == "new");
  CHECK(Read(report) == "new report");
  CHECK(Names(dir.path()) == std::vector<std::string>{"out.mlpackage", "report.json"});
}

TEST_CASE("staging: when the second rename fails the first is undone") {
  TempDir dir;
  const std::string pkg = dir.path() + "/out.mlpackage", report = dir.path() + "/report.json";
  fs::create_directories(pkg + "/Data/sub");
  Write(pkg + "/Data/sub/file", "old");
  for (bool renameat2 : {true, false}) {
    palettize::DisableRenameat2ForTesting(!renameat2);
    StagedOutput a, b;
    StageFolder(pkg, "new", true, &a);
    StageFile(report, "new report", true, &b);
    fs::create_directory(report);  // appears after staging: a file cannot replace a folder
    const palettize::Status st = CommitStaged({&a, &b});
    CHECK(st.code() == palettize::Status::Code::kIOError);
    CHECK(st.message() == report + ": cannot replace: Is a directory");
    CHECK(Read(pkg + "/Data/sub/file") == "old");
    CHECK(fs::is_directory(report));
    fs::remove(report);
  }
  palettize::DisableRenameat2ForTesting(false);
  CHECK(Names(dir.path()) == std::vector<std::string>{"out.mlpackage"});  // destructors removed the rest
}

TEST_CASE("staging: a new target that appears meanwhile is not replaced without overwrite") {
  TempDir dir;
  const std::string out = dir.path() + "/o.safetensors", report = dir.path() + "/r.json";
  for (bool renameat2 : {true, false}) {
    palettize::DisableRenameat2ForTesting(!renameat2);
    StagedOutput a, b;
    StageFile(report, "report", true, &b);
    StageFile(out, "new", false, &a);
    Write(out, "theirs");
    const palettize::Status st = CommitStaged({&b, &a});  // the report first: it is undone
    CHECK(st.message() == out + ": already exists (use overwrite to replace it)");
    CHECK(Read(out) == "theirs");
    CHECK(!fs::exists(report));
    fs::remove(out);
  }
  palettize::DisableRenameat2ForTesting(false);
  CHECK(Names(dir.path()).empty());
}

TEST_CASE("staging: the portable commit replaces and removes the previous target") {
  TempDir dir;
  const std::string pkg = dir.path() + "/out.mlpackage";
  fs::create_directories(pkg + "/Data/sub");
  Write(pkg + "/Data/sub/file", "old");
  palettize::DisableRenameat2ForTesting(true);
  StagedOutput a;
  StageFolder(pkg, "new", true, &a);
  const palettize::Status st = CommitStaged({&a});
  palettize::DisableRenameat2ForTesting(false);
  REQUIRE(st.ok());
  CHECK(Read(pkg + "/Data/sub/file") == "new");
  CHECK(Names(dir.path()) == std::vector<std::string>{"out.mlpackage"});
}

TEST_CASE("staging: an uncommitted output is removed; a special file is written in place") {
  TempDir dir;
  const std::string pkg = dir.path() + "/out.mlpackage";
  {
    StagedOutput a;
    StageFolder(pkg, "new", false, &a);
    CHECK(fs::exists(a.path() + "/Data/sub/file"));
  }
  CHECK(Names(dir.path()).empty());
  const std::string fifo = dir.path() + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);
  StagedOutput report;
  REQUIRE(palettize::StageText(fifo, "{}", &report).ok());
  CHECK(report.in_place());
  char buf[8] = {};
  CHECK(::read(reader, buf, sizeof buf) == 2);
  ::close(reader);
  REQUIRE(CommitStaged({&report}).ok());
  CHECK(fs::is_fifo(fifo));
  CHECK(Names(dir.path()) == std::vector<std::string>{"fifo"});
  const palettize::Status full = palettize::StageText("/dev/full", "{}", &report);
  CHECK(full.message() == "/dev/full: cannot write report: No space left on device");
}

TEST_CASE("staging: temporaries are random, exclusive, never through a planted link") {
  TempDir dir;
  const std::string target = dir.path() + "/o.safetensors", victim = dir.path() + "/victim";
  Write(victim, "precious");
  StagedOutput a, b;
  StageFile(target, "a", false, &a);
  StageFile(target, "b", false, &b);
  CHECK(a.path() != b.path());
  CHECK(a.path().size() == target.size() + std::string(".partial-XXXXXX").size());
  // A link where a staged file is to be created: refused, the linked file untouched.
  const std::string link = dir.path() + "/link";
  fs::create_symlink(victim, link);
  CHECK(palettize::CreateNewFile(link) < 0);
  CHECK(errno == EEXIST);
  CHECK(palettize::WriteNewFile(link, "x").message() == link + ": cannot create: File exists");
  // A link where a folder is to be made: refused, not followed.
  fs::create_directory(dir.path() + "/root");
  fs::create_directory_symlink(dir.path(), dir.path() + "/root/Data");
  CHECK(palettize::MakeFolders(dir.path() + "/root", "Data/sub").message() ==
        dir.path() + "/root/Data: cannot create folder: Not a directory");
  CHECK(Read(victim) == "precious");
  // A folder removed under a writer is not recreated (a signal removed the staged tree).
  CHECK(!palettize::MakeFolders(dir.path() + "/gone", "Data").ok());
  CHECK(!fs::exists(dir.path() + "/gone"));
}

TEST_CASE("staging: modes are 0644 and 0755 less the umask, without setgid") {
  TempDir dir;
  const std::string parent = dir.path() + "/setgid";
  fs::create_directory(parent);
  REQUIRE(::chmod(parent.c_str(), 02775) == 0);
  StagedOutput a, b;
  StageFolder(parent + "/out.mlpackage", "x", false, &a);
  StageFile(parent + "/o.safetensors", "x", false, &b);
  REQUIRE(CommitStaged({&a, &b}).ok());
  const unsigned mask = palettize::ProcessUmask();
  for (const std::string rel : {"/out.mlpackage", "/out.mlpackage/Data", "/out.mlpackage/Data/sub"}) {
    struct stat st;
    REQUIRE(::stat((parent + rel).c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == (0755 & ~mask));
  }
  for (const std::string rel : {"/out.mlpackage/Data/sub/file", "/o.safetensors"}) {
    struct stat st;
    REQUIRE(::stat((parent + rel).c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == (0644 & ~mask));
  }
}

// A crash keeps the names made before it and only the bytes synced (test/memory_env.h): a staged
// package renamed into place held a Manifest.json and a model.mlmodel (WriteNewFile) and copied
// files (CopyUnder) never synced, found empty after a crash that came after the commit.
TEST_CASE("staging: the files of a staged folder are synced before it is committed") {
  palettize::MemoryEnv env;
  env.AddFile("/in/pkg/Data/extra/notes.txt", "copied through");
  env.AddFolder("/out");
  {
    palettize::ScopedEnvForTesting scoped(&env);
    StagedOutput staged;
    REQUIRE(staged.Begin("/out/pkg", StagedOutput::Kind::kFolder, false).ok());
    REQUIRE(palettize::WriteNewFile(staged.path() + "/Manifest.json", "{}").ok());
    REQUIRE(palettize::MakeFolder(staged.path() + "/Data").ok());
    REQUIRE(
        palettize::CopyUnder("/in/pkg", "Data/extra", staged.path() + "/Data/extra", [](const std::string&) {
          return false;
        }).ok());
    REQUIRE(CommitStaged({&staged}).ok());
  }
  env.SimulateCrash();
  CHECK(env.Contents("/out/pkg/Manifest.json") == "{}");
  CHECK(env.Contents("/out/pkg/Data/extra/notes.txt") == "copied through");
}

TEST_CASE("staging: macOS's /dev/stdout (a link to fd/1) and /dev/fd/N are written in place") {
  // macOS and the BSDs: /dev/fd is a folder of their own (fdescfs) and /dev/stdout links to the
  // relative fd/1; stdout redirected to a file shows as a regular file there. Linux's /proc/self/fd
  // layout is covered by test/cli/test_commit.py on the real /dev/stdout.
  palettize::MemoryEnv env;
  env.AddFile("/dev/fd/1", "");
  env.AddFile("/dev/fd/3", "");
  env.AddLink("/dev/stdout", "fd/1");
  palettize::ScopedEnvForTesting scoped(&env);
  for (const std::string target : {"/dev/stdout", "/dev/fd/3"}) {
    StagedOutput report;
    REQUIRE(palettize::StageText(target, "{}", &report).ok());
    CHECK(report.in_place());
    REQUIRE(CommitStaged({&report}).ok());
  }
  CHECK(env.Contents("/dev/fd/1") == "{}");
  CHECK(env.Contents("/dev/fd/3") == "{}");
  CHECK(env.AllPaths() ==
        std::vector<std::string>{"/dev", "/dev/fd", "/dev/fd/1", "/dev/fd/3", "/dev/stdout"});
}
