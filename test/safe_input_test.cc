// util/safe_input: regular files only, no link followed below a root, bounded reads, copies
// without modes; and the blob file names a Package normalises (one spelling per file).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "package/package.h"
#include "palettize/config.h"
#include "test_util.h"
#include "util/env.h"
#include "util/file.h"
#include "util/safe_input.h"

using namespace palettize;
namespace fs = std::filesystem;

namespace {

void Write(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string ReadUnderRoot(const std::string& root, const std::string& rel, uint64_t max, Status* st) {
  UniqueFd fd;
  struct stat s;
  std::string out;
  *st = OpenUnder(root, rel, &fd, &s);
  if (st->ok()) *st = ReadAll(fd.get(), s, JoinPath(root, rel), max, "a test file", &out);
  return out;
}

std::vector<std::string> Walk(const std::string& root, const std::string& rel, Status* st) {
  std::vector<std::string> seen;
  *st = WalkUnder(root, rel, [&](const TreeEntry& e) {
    seen.push_back(e.rel + (S_ISDIR(e.st.st_mode) ? "/" : ""));
    return Status::OK();
  });
  return seen;
}

}  // namespace

TEST_CASE("ReadAll reads whole files of any size up to the limit, and refuses more unread") {
  TempDir dir;
  const std::string big(3 << 20, 'x');  // more than one read chunk
  Write(dir.path() + "/big", big);
  Write(dir.path() + "/empty", "");
  Status st;
  CHECK(ReadUnderRoot(dir.path(), "big", UINT64_MAX, &st) == big);
  CHECK(st.ok());
  CHECK(ReadUnderRoot(dir.path(), "big", big.size(), &st) == big);
  CHECK(st.ok());
  CHECK(ReadUnderRoot(dir.path(), "empty", 0, &st).empty());
  CHECK(st.ok());
  ReadUnderRoot(dir.path(), "big", big.size() - 1, &st);
  CHECK(st.code() == Status::Code::kInvalidInput);
  CHECK(st.message() == dir.path() + "/big: 3145728 bytes; a test file may have at most 3145727");
  ReadUnderRoot(dir.path(), "big", 1 << 20, &st);
  CHECK(st.message() == dir.path() + "/big: 3145728 bytes; a test file may have at most 1048576 (1 MiB)");

  std::string text;
  REQUIRE(ReadFileToString(dir.path() + "/big", &text).ok());
  CHECK(text == big);
}

TEST_CASE("ReadAll stops at the limit on a file larger than its size said") {
  // /dev/zero has size 0 and no end: the read must stop one byte past the limit.
  int fd = ::open("/dev/zero", O_RDONLY);
  REQUIRE(fd >= 0);
  struct stat st;
  REQUIRE(::fstat(fd, &st) == 0);
  std::string out;
  Status s = ReadAll(fd, st, "/dev/zero", 4096, "a test file", &out);
  ::close(fd);
  CHECK(s.code() == Status::Code::kInvalidInput);
  CHECK(s.message() == "/dev/zero: 4097 bytes; a test file may have at most 4096");
}

TEST_CASE("OpenRegularFile refuses folders, FIFOs and devices without opening them") {
  TempDir dir;
  const std::string fifo = dir.path() + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  UniqueFd fd;
  struct stat st;
  Status s = OpenRegularFile(fifo, &fd, &st);  // would block forever if opened for reading
  CHECK(s.code() == Status::Code::kIOError);
  CHECK(s.message() == fifo + ": is a FIFO, not a regular file");
  s = OpenRegularFile("/dev/zero", &fd, &st);
  CHECK(s.message() == "/dev/zero: is a character device, not a regular file");
  s = OpenRegularFile(dir.path(), &fd, &st);
  CHECK(s.message() == dir.path() + ": is a folder, expected a file");
  s = OpenRegularFile(dir.path() + "/none", &fd, &st);
  CHECK(s.message() == dir.path() + "/none: cannot open: No such file or directory");
  CHECK(fd.get() == -1);

  // A link the user names is followed: that is their choice.
  Write(dir.path() + "/real", "abc");
  fs::create_symlink("real", dir.path() + "/link");
  std::string text;
  REQUIRE(ReadFileToString(dir.path() + "/link", &text).ok());
  CHECK(text == "abc");

  MappedFile map;
  CHECK(map.Open(fifo).message() == fifo + ": is a FIFO, not a regular file");
}

TEST_CASE("OpenUnder follows no link below the root, at any component") {
  TempDir dir;
  const std::string root = dir.path() + "/pkg";
  Write(root + "/Data/a/file", "inside");
  Write(dir.path() + "/outside/secret", "root:x:0:0");
  fs::create_symlink(dir.path() + "/outside/secret", root + "/Data/a/linked_file");
  fs::create_symlink(dir.path() + "/outside", root + "/Data/linked_dir");
  fs::create_symlink(".", root + "/Data/a/self");
  Status st;
  CHECK(ReadUnderRoot(root, "Data/a/file", 100, &st) == "inside");
  CHECK(ReadUnderRoot(root, "Data//./a/file", 100, &st) == "inside");

  CHECK(ReadUnderRoot(root, "Data/a/linked_file", 100, &st).empty());
  CHECK(st.code() == Status::Code::kInvalidInput);
  CHECK(st.message() ==
        root + "/Data/a/linked_file: is a symbolic link; links inside a package are not followed");
  ReadUnderRoot(root, "Data/linked_dir/secret", 100, &st);
  CHECK(st.message() ==
        root + "/Data/linked_dir: is a symbolic link; links inside a package are not followed");
  ReadUnderRoot(root, "Data/a/self/file", 100, &st);
  CHECK(st.message() == root + "/Data/a/self: is a symbolic link; links inside a package are not followed");
  ReadUnderRoot(root, "Data/../pkg/Data/a/file", 100, &st);
  CHECK(st.message() == root + "/Data/../pkg/Data/a/file: '..' leaves the package");
  ReadUnderRoot(root, "Data/a/file/x", 100, &st);
  CHECK(st.message() == root + "/Data/a/file: not a folder");

  // The root itself may be a link.
  fs::create_symlink(root, dir.path() + "/pkg-link");
  CHECK(ReadUnderRoot(dir.path() + "/pkg-link", "Data/a/file", 100, &st) == "inside");
}

TEST_CASE("OpenUnder and WalkUnder refuse FIFOs and sockets without opening them") {
  TempDir dir;
  const std::string root = dir.path() + "/pkg";
  Write(root + "/Data/model", "m");
  REQUIRE(::mkfifo((root + "/Data/fifo").c_str(), 0644) == 0);
  Status st;
  ReadUnderRoot(root, "Data/fifo", 100, &st);
  CHECK(st.code() == Status::Code::kInvalidInput);
  CHECK(st.message() ==
        root + "/Data/fifo: is a FIFO; only regular files and folders are read inside a package");
  Walk(root, "", &st);
  CHECK(st.message() ==
        root + "/Data/fifo: is a FIFO; only regular files and folders are read inside a package");
  REQUIRE(::unlink((root + "/Data/fifo").c_str()) == 0);

  const std::string sock_path = root + "/Data/sock";
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(sock_path.size() < sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock_path.c_str());
  REQUIRE(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  Walk(root, "", &st);
  ::close(sock);
  CHECK(st.message() ==
        root + "/Data/sock: is a socket; only regular files and folders are read inside a package");
}

TEST_CASE("WalkUnder visits sorted, parents first, and stops at the first link") {
  TempDir dir;
  const std::string root = dir.path() + "/pkg";
  Write(root + "/b/y", "");
  Write(root + "/b/x", "");
  Write(root + "/a", "");
  Status st;
  CHECK(Walk(root, "", &st) == std::vector<std::string>{"a", "b/", "b/x", "b/y"});
  CHECK(st.ok());
  CHECK(Walk(root, "b", &st) == std::vector<std::string>{"b/", "b/x", "b/y"});
  CHECK(Walk(root, "./b/x", &st) == std::vector<std::string>{"b/x"});
  fs::create_symlink(".", root + "/b/w");
  CHECK(Walk(root, "", &st) == std::vector<std::string>{"a", "b/"});
  CHECK(st.message() == root + "/b/w: is a symbolic link; links inside a package are not followed");

  std::string deep = root + "/d";
  for (int i = 0; i <= kMaxTreeDepth; ++i) deep += "/d";
  fs::create_directories(deep);
  fs::remove(root + "/b/w");
  Walk(root, "", &st);
  CHECK(st.code() == Status::Code::kInvalidInput);
  CHECK(st.message().find("folders nested more than 64 deep") != std::string::npos);
}

TEST_CASE("CopyUnder copies contents, not modes, and leaves out what skip names") {
  TempDir dir;
  const std::string root = dir.path() + "/pkg";
  Write(root + "/item/sub/suid", "s");
  Write(root + "/item/skipped", "k");
  Write(root + "/item/plain", "p");
  fs::permissions(root + "/item/sub/suid", fs::perms(06777));
  fs::permissions(root + "/item/sub", fs::perms(01777));
  const mode_t old_mask = ::umask(022);
  const std::string to = dir.path() + "/out/deep/item";
  fs::create_directories(dir.path() + "/out/deep");
  fs::create_directories(dir.path() + "/one");
  fs::create_directories(dir.path() + "/out2");
  Status st =
      CopyUnder(root, "item", to, [&](const std::string& shown) { return shown == root + "/item/skipped"; });
  ::umask(old_mask);
  REQUIRE(st.ok());
  std::string text;
  REQUIRE(ReadFileToString(to + "/sub/suid", &text).ok());
  CHECK(text == "s");
  CHECK(!fs::exists(to + "/skipped"));
  struct stat s;
  REQUIRE(::lstat((to + "/sub/suid").c_str(), &s) == 0);
  CHECK((s.st_mode & 07777) == 0644);
  REQUIRE(::lstat((to + "/sub").c_str(), &s) == 0);
  CHECK((s.st_mode & 07777) == 0755);
  REQUIRE(::lstat((to + "/plain").c_str(), &s) == 0);
  CHECK((s.st_mode & 07777) == 0644);

  // A single file, and a tree copied over a copy of itself (overlapping manifest items).
  REQUIRE(CopyUnder(root, "item/plain", dir.path() + "/one/plain", [](const std::string&) {
            return false;
          }).ok());
  REQUIRE(ReadFileToString(dir.path() + "/one/plain", &text).ok());
  CHECK(text == "p");
  CHECK(CopyUnder(root, "item", to, [](const std::string&) { return false; }).ok());
  CHECK(fs::exists(to + "/skipped"));

  // A link is refused, not copied.
  fs::create_symlink("/etc/passwd", root + "/item/passwd");
  st = CopyUnder(root, "item", dir.path() + "/out2/item", [](const std::string&) { return false; });
  CHECK(st.message() == root + "/item/passwd: is a symbolic link; links inside a package are not followed");
  CHECK(!fs::exists(dir.path() + "/out2/item/passwd"));
}

// The POSIX Env lists a duplicate of the descriptor, which shares its read position: without a
// rewind, a second listing of one open folder found nothing.
TEST_CASE("Env::ListFolder of an open folder lists every name each time") {
  TempDir dir;
  Write(dir.path() + "/a", "1");
  Write(dir.path() + "/b", "2");
  Env* env = Env::Default();
  UniqueFd fd(env->Open(dir.path(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(fd.get() >= 0);
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> names;
    REQUIRE(env->ListFolder(fd.get(), &names) == 0);
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"a", "b"});
  }
}

TEST_CASE("Blob file names are normalised: one spelling per file, '..' refused") {
  Package p;
  REQUIRE(p.Load(SharedModel("mnist")).ok());
  std::string n;
  for (const char* spelling : {"@model_path/weights/weight.bin", "@model_path/weights/./weight.bin",
                               "@model_path/weights//weight.bin", "@model_path/./weights/weight.bin/",
                               "@model_path//weights/weight.bin"}) {
    INFO(spelling);
    REQUIRE(p.NormalizeBlobFileName(spelling, &n).ok());
    CHECK(n == "@model_path/weights/weight.bin");
  }
  const BlobReader* a;
  const BlobReader* b;
  REQUIRE(p.OpenWeightFile("@model_path/weights/weight.bin", &a).ok());
  REQUIRE(p.OpenWeightFile("@model_path/weights//./weight.bin", &b).ok());
  CHECK(a == b);
  for (const char* bad : {"@model_path/weights/../weight.bin", "@model_path/..", "@model_path/",
                          "@model_path/./", "@model_path//"}) {
    INFO(bad);
    Status st = p.NormalizeBlobFileName(bad, &n);
    CHECK(st.code() == Status::Code::kInvalidInput);
    CHECK(st.message().find("' leaves the package") != std::string::npos);
  }
  CHECK(
      p.NormalizeBlobFileName("weights/weight.bin", &n).message().find("does not start with @model_path/") !=
      std::string::npos);
  // A name holding ".." inside a component is an ordinary name.
  REQUIRE(p.NormalizeBlobFileName("@model_path/weights/a..b", &n).ok());
  CHECK(n == "@model_path/weights/a..b");
}

TEST_CASE("ReadConfigFile: only a regular file, at most kMaxConfigBytes") {
  TempDir dir;
  OptimizationConfig cfg;
  Status st = ReadConfigFile(dir.path(), false, &cfg);
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message() == dir.path() + ": is a folder, expected a file");
  st = ReadConfigFile("/dev/zero", false, &cfg);
  CHECK(st.message() == "/dev/zero: is a character device, not a regular file");
  const std::string big = dir.path() + "/big.yaml";
  Write(big, "");
  fs::resize_file(big, kMaxConfigBytes + 1);  // sparse: refused from its size
  st = ReadConfigFile(big, false, &cfg);
  CHECK(st.code() == Status::Code::kInvalidArgument);
  CHECK(st.message() == big + ": 16777217 bytes; a config may have at most 16777216 (16 MiB)");
  Write(dir.path() + "/ok.yaml", "global_config: {mode: kmeans, nbits: 4}\n");
  REQUIRE(ReadConfigFile(dir.path() + "/ok.yaml", false, &cfg).ok());
  CHECK(cfg.global_config->nbits == 4);
}
