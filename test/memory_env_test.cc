// The in-memory Env (memory_env.h) against POSIX: one set of assertions runs on Env::Default() in
// a temporary folder and on a MemoryEnv, so the model cannot drift from what Linux does. Then what
// only the memory Env has: faults, a space limit, crashes, copying trees in and out.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "memory_env.h"
#include "test_util.h"
#include "util/staging.h"

using namespace palettize;
namespace fs = std::filesystem;

namespace {

// What the Env has no call for: making links and FIFOs.
struct Maker {
  std::function<void(const std::string& path, const std::string& target)> link;
  std::function<void(const std::string& path)> fifo;
};

// -1 and errno `err`.
#define CHECK_ERRNO(call, err)                                       \
  do {                                                               \
    errno = 0;                                                       \
    const auto rc_ = (call);                                         \
    const int errno_ = errno;                                        \
    CHECK(rc_ == -1);                                                \
    CHECK(std::string(std::strerror(errno_)) == std::strerror(err)); \
  } while (0)

std::string ReadWhole(Env* env, const std::string& path) {
  const int fd = env->Open(path, O_RDONLY);
  REQUIRE(fd >= 0);
  std::string out;
  char buf[7];  // small, so that offsets advance many times
  for (ssize_t n; (n = env->Read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  env->Close(fd);
  return out;
}

void WriteWhole(Env* env, const std::string& path, const std::string& bytes) {
  const int fd = env->CreateOrTruncate(path, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(env->Write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()));
  REQUIRE(env->Close(fd) == 0);
}

std::set<std::string> Names(Env* env, const std::string& path) {
  std::vector<std::string> names;
  REQUIRE(env->ListFolder(path, &names) == 0);
  return {names.begin(), names.end()};
}

mode_t Perm(Env* env, const std::string& path) {
  struct stat st;
  REQUIRE(env->Lstat(path, &st) == 0);
  return st.st_mode & 07777;
}

// The POSIX behaviour palettize relies on, in folder `b` (which exists and is empty).
void CheckPosixContract(Env* env, const std::string& b, const Maker& make) {
  const mode_t umask = mode_t(ProcessUmask());
  struct stat st, st2;

  SECTION("exclusive creation, truncation, links never written through") {
    const int fd = env->CreateNew(b + "/f", 0644);
    REQUIRE(fd >= 0);
    CHECK(env->Write(fd, "hello", 5) == 5);
    CHECK(env->Sync(fd) == 0);
    CHECK(env->Close(fd) == 0);
    CHECK_ERRNO(env->Close(fd), EBADF);
    CHECK(Perm(env, b + "/f") == (0644 & ~umask));
    CHECK_ERRNO(env->CreateNew(b + "/f", 0644), EEXIST);
    make.link(b + "/l", "f");
    make.link(b + "/dangling", "nowhere");
    CHECK_ERRNO(env->CreateNew(b + "/l", 0644), EEXIST);
    CHECK_ERRNO(env->CreateNew(b + "/dangling", 0644), EEXIST);
    CHECK_ERRNO(env->CreateOrTruncate(b + "/l", 0644), ELOOP);
    CHECK(!Names(env, b).count("nowhere"));
    CHECK(ReadWhole(env, b + "/f") == "hello");
    WriteWhole(env, b + "/f", "hi");
    CHECK(ReadWhole(env, b + "/f") == "hi");
    CHECK_ERRNO(env->CreateNew(b + "/missing/f", 0644), ENOENT);
    CHECK_ERRNO(env->CreateNew(b + "/f/g", 0644), ENOTDIR);
    CHECK_ERRNO(env->CreateOrTruncate(b, 0644), EISDIR);
  }

  SECTION("open flags: O_NOFOLLOW, O_DIRECTORY, access modes") {
    WriteWhole(env, b + "/f", "abc");
    make.link(b + "/l", "f");
    CHECK_ERRNO(env->Open(b + "/l", O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK_ERRNO(env->Open(b + "/f", O_RDONLY | O_DIRECTORY), ENOTDIR);
    CHECK_ERRNO(env->Open(b + "/none", O_RDONLY), ENOENT);
    CHECK_ERRNO(env->Open(b + "/f/x", O_RDONLY), ENOTDIR);
    CHECK_ERRNO(env->OpenForWriting(b, 0), EISDIR);
    CHECK_ERRNO(env->Stat(b + "/f/", &st), ENOTDIR);
    const int ro = env->Open(b + "/l", O_RDONLY);
    REQUIRE(ro >= 0);
    CHECK_ERRNO(env->Write(ro, "x", 1), EBADF);
    env->Close(ro);
    const int wo = env->OpenForWriting(b + "/f", 0);
    REQUIRE(wo >= 0);
    char c;
    CHECK_ERRNO(env->Read(wo, &c, 1), EBADF);
    CHECK(env->Write(wo, "X", 1) == 1);  // no O_TRUNC: written over the first byte
    env->Close(wo);
    CHECK(ReadWhole(env, b + "/f") == "Xbc");
    const int dir = env->Open(b, O_RDONLY | O_DIRECTORY);
    REQUIRE(dir >= 0);
    CHECK_ERRNO(env->Read(dir, &c, 1), EISDIR);
    env->Close(dir);
  }

  SECTION("each descriptor has its offset; ReadAt and WriteAt leave it") {
    WriteWhole(env, b + "/f", "0123456789");
    const int a = env->Open(b + "/f", O_RDONLY), c = env->Open(b + "/f", O_RDONLY);
    char buf[4] = {};
    CHECK(env->Read(a, buf, 3) == 3);
    CHECK(std::string(buf, 3) == "012");
    CHECK(env->ReadAt(a, buf, 2, 8) == 2);
    CHECK(std::string(buf, 2) == "89");
    CHECK(env->ReadAt(a, buf, 4, 10) == 0);
    CHECK(env->Read(a, buf, 3) == 3);
    CHECK(std::string(buf, 3) == "345");
    CHECK(env->Read(c, buf, 2) == 2);
    CHECK(std::string(buf, 2) == "01");
    env->Close(a), env->Close(c);
    const int w = env->CreateNew(b + "/g", 0644);
    CHECK(env->Write(w, "abcdef", 6) == 6);
    CHECK(env->WriteAt(w, "XY", 2, 1) == 2);
    CHECK(env->Write(w, "gh", 2) == 2);
    CHECK(env->WriteAt(w, "Z", 1, 10) == 1);  // past the end: a hole of zeros
    env->Close(w);
    CHECK(ReadWhole(env, b + "/g") == std::string("aXYdefgh\0\0Z", 11));
  }

  SECTION("stat, lstat, fstat, statat: kinds, sizes, inodes, link counts") {
    WriteWhole(env, b + "/f", "12345");
    REQUIRE(env->MakeFolder(b + "/d", 0755) == 0);
    REQUIRE(env->MakeFolder(b + "/d/e", 0755) == 0);
    make.link(b + "/l", "f");
    REQUIRE(env->Stat(b + "/l", &st) == 0);
    REQUIRE(env->Stat(b + "/f", &st2) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK(st.st_size == 5);
    CHECK(st.st_nlink == 1);
    CHECK((st.st_ino == st2.st_ino && st.st_dev == st2.st_dev));
    REQUIRE(env->Lstat(b + "/l", &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(st.st_size == 1);
    CHECK(st.st_ino != st2.st_ino);
    REQUIRE(env->Stat(b + "/d", &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    CHECK(st.st_nlink == 3);  // ".", its name, e's ".."
    const int d = env->Open(b, O_RDONLY | O_DIRECTORY);
    REQUIRE(d >= 0);
    REQUIRE(env->StatAt(d, "l", &st, AT_SYMLINK_NOFOLLOW) == 0);
    CHECK(S_ISLNK(st.st_mode));
    REQUIRE(env->StatAt(d, "l", &st, 0) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK_ERRNO(env->StatAt(d, "none", &st, 0), ENOENT);
    CHECK_ERRNO(env->OpenAt(d, "l", O_RDONLY | O_NOFOLLOW), ELOOP);
    const int f = env->OpenAt(d, "f", O_RDONLY | O_NOFOLLOW);
    REQUIRE(f >= 0);
    REQUIRE(env->Fstat(f, &st) == 0);
    CHECK(st.st_ino == st2.st_ino);
    CHECK_ERRNO(env->StatAt(f, "x", &st, 0), ENOTDIR);
    const int sub = env->OpenAt(d, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    REQUIRE(sub >= 0);
    std::vector<std::string> names;
    REQUIRE(env->ListFolder(sub, &names) == 0);
    CHECK(names == std::vector<std::string>{"e"});
    REQUIRE(env->ListFolder(sub, &names) == 0);  // again: the listing starts at the beginning
    CHECK(names.size() == 1);
    CHECK_ERRNO(env->ListFolder(f, &names), ENOTDIR);
    CHECK_ERRNO(env->ListFolder(b + "/f", &names), ENOTDIR);
    CHECK_ERRNO(env->ListFolder(b + "/none", &names), ENOENT);
    env->Close(sub), env->Close(f), env->Close(d);
    CHECK(Names(env, b) == std::set<std::string>{"d", "f", "l"});
  }

  SECTION("realpath resolves links, . and ..; readlink; loops") {
    std::string base;
    REQUIRE(env->RealPath(b, &base));
    REQUIRE(env->MakeFolder(b + "/d", 0755) == 0);
    REQUIRE(env->MakeFolder(b + "/d/e", 0755) == 0);
    WriteWhole(env, b + "/d/e/f", "x");
    make.link(b + "/up", "d/e/..");
    make.link(b + "/d/e/lf", "../../d/./e/f");
    std::string out;
    REQUIRE(env->RealPath(b + "/up/./e/lf", &out));
    CHECK(out == base + "/d/e/f");
    REQUIRE(env->RealPath(b + "/up/", &out));
    CHECK(out == base + "/d");
    CHECK(!env->RealPath(b + "/up/none", &out));
    CHECK(errno == ENOENT);
    CHECK(env->ReadLink(b + "/d/e/lf", &out) == 13);
    CHECK(out == "../../d/./e/f");
    CHECK_ERRNO(env->ReadLink(b + "/d/e/f", &out), EINVAL);
    CHECK_ERRNO(env->ReadLink(b + "/none", &out), ENOENT);
    make.link(b + "/loop1", "loop2");
    make.link(b + "/loop2", "loop1");
    CHECK_ERRNO(env->Stat(b + "/loop1", &st), ELOOP);
    CHECK(!env->RealPath(b + "/loop1", &out));
    CHECK(errno == ELOOP);
  }

  SECTION("temporaries: unique names, 0600 and 0700, created exclusively") {
    std::string n1 = b + "/t.partial-XXXXXX", n2 = n1, n3 = n1;
    const int f1 = env->MakeTempFile(&n1), f2 = env->MakeTempFile(&n2);
    REQUIRE((f1 >= 0 && f2 >= 0));
    CHECK(n1 != n2);
    CHECK(n1.find("XXXXXX") == std::string::npos);
    CHECK(n1.size() == (b + "/t.partial-XXXXXX").size());
    CHECK(Perm(env, n1) == 0600);
    CHECK(env->Write(f1, "a", 1) == 1);
    env->Close(f1), env->Close(f2);
    REQUIRE(env->MakeTempFolder(&n3));
    CHECK(Perm(env, n3) == 0700);
    REQUIRE(env->Stat(n3, &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    std::string bad = b + "/no-template";
    CHECK_ERRNO(env->MakeTempFile(&bad), EINVAL);
    CHECK(Names(env, b).size() == 3);
  }

  SECTION("folders: mkdir, chmod, fchmod, rmdir") {
    REQUIRE(env->MakeFolder(b + "/d", 0777) == 0);
    CHECK(Perm(env, b + "/d") == (0777 & ~umask));
    CHECK_ERRNO(env->MakeFolder(b + "/d", 0755), EEXIST);
    make.link(b + "/dangling", "nowhere");
    CHECK_ERRNO(env->MakeFolder(b + "/dangling", 0755), EEXIST);
    CHECK_ERRNO(env->MakeFolder(b + "/x/y", 0755), ENOENT);
    REQUIRE(env->Chmod(b + "/d", 02755) == 0);
    REQUIRE(env->MakeFolder(b + "/d/sub", 0755) == 0);
    CHECK(Perm(env, b + "/d/sub") == (02000 | (0755 & ~umask)));  // setgid inherited
    WriteWhole(env, b + "/d/sub/f", "x");
    const int fd = env->Open(b + "/d/sub/f", O_RDONLY);
    REQUIRE(env->Fchmod(fd, 0600) == 0);
    env->Close(fd);
    CHECK(Perm(env, b + "/d/sub/f") == 0600);
    CHECK_ERRNO(env->Chmod(b + "/none", 0644), ENOENT);
    CHECK_ERRNO(env->RemoveFolder(b + "/d/sub"), ENOTEMPTY);
    CHECK_ERRNO(env->RemoveFolder(b + "/d/sub/f"), ENOTDIR);
    CHECK_ERRNO(env->RemoveFolder(b + "/none"), ENOENT);
    CHECK_ERRNO(env->Unlink(b + "/d/sub"), EISDIR);
    CHECK_ERRNO(env->Unlink(b + "/none"), ENOENT);
    REQUIRE(env->Unlink(b + "/d/sub/f") == 0);
    REQUIRE(env->RemoveFolder(b + "/d/sub") == 0);
    CHECK(Names(env, b + "/d").empty());
  }

  SECTION("rename: over files, folder rules, renameat2") {
    WriteWhole(env, b + "/a", "A");
    WriteWhole(env, b + "/c", "C");
    REQUIRE(env->Stat(b + "/a", &st) == 0);
    const int open_a = env->Open(b + "/a", O_RDONLY);
    REQUIRE(env->Rename(b + "/a", b + "/c") == 0);  // replaces c
    REQUIRE(env->Stat(b + "/c", &st2) == 0);
    CHECK(st2.st_ino == st.st_ino);
    CHECK(ReadWhole(env, b + "/c") == "A");
    char ch = 0;
    CHECK(env->Read(open_a, &ch, 1) == 1);  // an open file follows its inode
    CHECK(ch == 'A');
    env->Close(open_a);
    CHECK_ERRNO(env->Rename(b + "/a", b + "/z"), ENOENT);
    REQUIRE(env->MakeFolder(b + "/d", 0755) == 0);
    REQUIRE(env->MakeFolder(b + "/e", 0755) == 0);
    REQUIRE(env->MakeFolder(b + "/full", 0755) == 0);
    WriteWhole(env, b + "/full/x", "x");
    CHECK_ERRNO(env->Rename(b + "/c", b + "/d"), EISDIR);
    CHECK_ERRNO(env->Rename(b + "/d", b + "/c"), ENOTDIR);
    CHECK_ERRNO(env->Rename(b + "/d", b + "/full"), ENOTEMPTY);
    CHECK_ERRNO(env->Rename(b + "/d", b + "/d/inside"), EINVAL);
    REQUIRE(env->Rename(b + "/d", b + "/e") == 0);  // over an empty folder
    CHECK(Names(env, b) == std::set<std::string>{"c", "e", "full"});
    REQUIRE(env->Rename(b + "/c", b + "/c") == 0);
    WriteWhole(env, b + "/n", "N");
    CHECK_ERRNO(env->Rename2(b + "/n", b + "/c", RENAME_NOREPLACE), EEXIST);
    REQUIRE(env->Rename2(b + "/n", b + "/m", RENAME_NOREPLACE) == 0);
    REQUIRE(env->Rename2(b + "/m", b + "/full", RENAME_EXCHANGE) == 0);  // a file and a folder swap
    CHECK(ReadWhole(env, b + "/full") == "N");
    CHECK(ReadWhole(env, b + "/m/x") == "x");
    CHECK_ERRNO(env->Rename2(b + "/m", b + "/none", RENAME_EXCHANGE), ENOENT);
    CHECK_ERRNO(env->Rename2(b + "/m", b + "/c", RENAME_EXCHANGE | RENAME_NOREPLACE), EINVAL);
    CHECK_ERRNO(env->Rename2(b + "/m", b + "/m/x", RENAME_EXCHANGE), EINVAL);
  }

  SECTION("unlink of an open file, remove a tree without following links") {
    WriteWhole(env, b + "/f", "bytes");
    const int fd = env->Open(b + "/f", O_RDONLY);
    REQUIRE(env->Unlink(b + "/f") == 0);
    REQUIRE(env->Fstat(fd, &st) == 0);
    CHECK(st.st_nlink == 0);
    char buf[5];
    CHECK(env->Read(fd, buf, 5) == 5);
    env->Close(fd);
    REQUIRE(env->MakeFolder(b + "/keep", 0755) == 0);
    WriteWhole(env, b + "/keep/k", "k");
    REQUIRE(env->MakeFolder(b + "/t", 0755) == 0);
    REQUIRE(env->MakeFolder(b + "/t/u", 0755) == 0);
    WriteWhole(env, b + "/t/u/f", "f");
    make.link(b + "/t/u/out", "../../keep");
    env->RemoveTree(b + "/t");
    CHECK(Names(env, b) == std::set<std::string>{"keep"});
    CHECK(ReadWhole(env, b + "/keep/k") == "k");
    env->RemoveTree(b + "/none");  // no error
    make.link(b + "/lk", "keep");
    env->RemoveTree(b + "/lk");  // the link, not the folder
    CHECK(Names(env, b) == std::set<std::string>{"keep"});
    CHECK(Names(env, b + "/keep").size() == 1);
  }

  SECTION("a FIFO: a kind of its own, opened for reading without blocking, never for writing") {
    make.fifo(b + "/p");
    REQUIRE(env->Lstat(b + "/p", &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    const int fd = env->Open(b + "/p", O_RDONLY | O_NONBLOCK);
    REQUIRE(fd >= 0);
    CHECK_ERRNO(env->Sync(fd), EINVAL);
    env->Close(fd);
    CHECK_ERRNO(env->OpenForWriting(b + "/p", O_NONBLOCK), ENXIO);
  }

  SECTION("map: a page-aligned read-only view of the bytes") {
    std::string bytes(10000, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = char(i * 7);
    WriteWhole(env, b + "/f", bytes);
    const int fd = env->Open(b + "/f", O_RDONLY);
    void* p = env->Map(fd, bytes.size());
    REQUIRE(p != nullptr);
    CHECK(uintptr_t(p) % 4096 == 0);
    CHECK(std::string(static_cast<const char*>(p), bytes.size()) == bytes);
    env->Unmap(p, bytes.size());
    env->Close(fd);
  }
}

}  // namespace

TEST_CASE("memory env: POSIX behaviour, on the real file system (the reference)") {
  TempDir dir;
  const Maker make{[](const std::string& path, const std::string& target) {
                     REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
                   },
                   [](const std::string& path) { REQUIRE(::mkfifo(path.c_str(), 0644) == 0); }};
  CheckPosixContract(Env::Default(), dir.path(), make);
}

TEST_CASE("memory env: POSIX behaviour, in memory (the same assertions)") {
  MemoryEnv env;
  env.AddFolder("/base");
  const Maker make{[&](const std::string& path, const std::string& target) { env.AddLink(path, target); },
                   [&](const std::string& path) { env.AddSpecial(path, MemoryEnv::Kind::kFifo); }};
  CheckPosixContract(&env, "/base", make);
  CHECK(env.open_descriptors() == 0);
  CHECK(env.open_maps() == 0);
}

TEST_CASE("memory env: the Nth call of a kind, or the Nth mutation, fails and changes nothing") {
  MemoryEnv env;
  env.AddFolder("/d");
  SECTION("the second create") {
    env.FailCall(FaultOp::kCreate, 2, ENOSPC);
    const int a = env.CreateNew("/d/a", 0644);
    CHECK(a >= 0);
    CHECK_ERRNO(env.CreateNew("/d/b", 0644), ENOSPC);
    CHECK(!env.Exists("/d/b"));
    CHECK(env.CreateNew("/d/c", 0644) >= 0);
    CHECK(env.calls(FaultOp::kCreate) == 3);
    CHECK(env.fired());
  }
  SECTION("the first close of a written file; a read-only one does not count") {
    env.AddFile("/d/f", "x");
    env.FailCall(FaultOp::kClose, 1);
    const int r = env.Open("/d/f", O_RDONLY);
    CHECK(env.Close(r) == 0);
    const int w = env.CreateNew("/d/g", 0644);
    CHECK(env.Write(w, "y", 1) == 1);
    CHECK_ERRNO(env.Close(w), EIO);
    CHECK(env.open_descriptors() == 0);  // released all the same
  }
  SECTION("the third mutation, whatever it is") {
    env.FailMutation(3, EROFS);
    CHECK(env.MakeFolder("/d/x", 0755) == 0);
    CHECK(env.MakeFolder("/d/y", 0755) == 0);
    CHECK_ERRNO(env.Rename("/d/x", "/d/z"), EROFS);
    CHECK(env.Exists("/d/x"));
    CHECK(env.mutations() == 3);
  }
  SECTION("a space limit: a short write, then ENOSPC") {
    env.AddFile("/d/old", std::string(60, 'o'));
    env.SetSpaceLimit(100);
    const int fd = env.CreateNew("/d/f", 0644);
    CHECK(env.Write(fd, std::string(30, 'a').data(), 30) == 30);
    CHECK(env.Write(fd, std::string(30, 'b').data(), 30) == 10);
    CHECK_ERRNO(env.Write(fd, "c", 1), ENOSPC);
    CHECK(env.WriteAt(fd, "Z", 1, 0) == 1);  // over existing bytes: no new space
    env.Close(fd);
    CHECK(env.Contents("/d/f") == "Z" + std::string(29, 'a') + std::string(10, 'b'));
  }
  SECTION("a full device: writes fail ENOSPC, sync EINVAL") {
    env.AddSpecial("/dev/full", MemoryEnv::Kind::kFullDevice);
    struct stat st;
    REQUIRE(env.Stat("/dev/full", &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
    const int fd = env.OpenForWriting("/dev/full", O_NOCTTY);
    REQUIRE(fd >= 0);
    CHECK_ERRNO(env.Write(fd, "x", 1), ENOSPC);
    CHECK_ERRNO(env.Sync(fd), EINVAL);
    env.Close(fd);
  }
}

TEST_CASE("memory env: a crash keeps every name and only the synced bytes") {
  MemoryEnv env;
  env.AddFile("/d/old", "durable");  // files added by the test are durable
  const int a = env.CreateNew("/d/a", 0644);
  env.Write(a, "synced", 6);
  env.Sync(a);
  env.Write(a, " and not", 8);
  env.Close(a);
  const int b = env.CreateNew("/d/b", 0644);
  env.Write(b, "never synced", 12);
  env.Close(b);
  REQUIRE(env.Rename("/d/b", "/d/renamed") == 0);
  const int before = env.mutations();
  env.CrashAtMutation(before + 2);
  REQUIRE(env.MakeFolder("/d/kept", 0755) == 0);
  CHECK_ERRNO(env.MakeFolder("/d/lost", 0755), EIO);  // the crash
  CHECK_ERRNO(env.CreateNew("/d/after", 0644), EIO);  // the process is dead: nothing more happens
  env.RemoveTree("/d/kept");
  CHECK(env.fired());
  const int open_fd = env.Open("/d/old", O_RDONLY);
  CHECK(open_fd >= 0);
  env.SimulateCrash();
  CHECK(env.open_descriptors() == 0);
  CHECK(env.Contents("/d/old") == "durable");
  CHECK(env.Contents("/d/a") == "synced");
  CHECK(env.Exists("/d/renamed"));
  CHECK(env.Contents("/d/renamed").empty());
  CHECK(env.Exists("/d/kept"));
  CHECK(!env.Exists("/d/lost"));
  CHECK(!env.Exists("/d/after"));
  CHECK(env.CreateNew("/d/after", 0644) >= 0);  // usable again after the crash
}

TEST_CASE("memory env: a real package copied in, listed, and out again byte for byte") {
  MemoryEnv env;
  env.CopyIn(SharedModel("activity_fp16"), "/m/in.mlpackage");
  const auto snap = env.Snapshot("/m/in.mlpackage");
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(SharedModel("activity_fp16"))) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string rel = fs::relative(e.path(), SharedModel("activity_fp16")).string();
    REQUIRE(snap.count(rel) == 1);
    std::string bytes;
    bytes = ReadWhole(Env::Default(), e.path().string());
    CHECK(snap.at(rel).substr(5) == bytes);  // after "0644 "
    CHECK(env.Contents("/m/in.mlpackage/" + rel) == bytes);
  }
  CHECK(files >= 3);
  const std::vector<std::string> all = env.AllPaths();
  CHECK(std::count_if(all.begin(), all.end(), [](const std::string& p) {
          return p.find(".mlpackage/") != std::string::npos;
        }) == std::ptrdiff_t(snap.size() - 1));
  TempDir out;
  env.CopyOut("/m/in.mlpackage", out.path() + "/copy");
  MemoryEnv back;
  back.CopyIn(out.path() + "/copy", "/x");
  CHECK(back.Snapshot("/x") == snap);
}
