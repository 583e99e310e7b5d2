// The POSIX Env: each method is the system call the code made before the seam, unchanged.
#include "util/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace palettize {

namespace {

// Reads the open DIR to its end; closes it (and so the descriptor it was opened on).
int ReadNames(DIR* d, std::vector<std::string>* names) {
  names->clear();
  errno = 0;
  while (const dirent* de = ::readdir(d)) {
    if (std::strcmp(de->d_name, ".") != 0 && std::strcmp(de->d_name, "..") != 0)
      names->emplace_back(de->d_name);
  }
  const int err = errno;
  ::closedir(d);
  errno = err;
  return err != 0 ? -1 : 0;
}

class PosixEnv final : public Env {
 public:
  int Open(const std::string& path, int flags) override { return ::open(path.c_str(), flags); }
  int OpenAt(int dir_fd, const std::string& name, int flags) override {
    return ::openat(dir_fd, name.c_str(), flags);
  }
  ssize_t Read(int fd, void* buf, size_t n) override { return ::read(fd, buf, n); }
  ssize_t ReadAt(int fd, void* buf, size_t n, off_t offset) override { return ::pread(fd, buf, n, offset); }
  void* Map(int fd, size_t size) override {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  void Unmap(void* p, size_t size) override { ::munmap(p, size); }
  int ListFolder(int dir_fd, std::vector<std::string>* names) override {
    // A duplicate, so that closedir leaves the caller's descriptor open. The duplicate shares
    // the folder's read position with `dir_fd`: rewound, so that a folder listed before (or read
    // by the caller) is listed whole.
    const int fd = ::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return -1;
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      const int err = errno;
      ::close(fd);
      errno = err;
      return -1;
    }
    ::rewinddir(d);
    return ReadNames(d, names);
  }
  int ListFolder(const std::string& path, std::vector<std::string>* names) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return -1;
    return ReadNames(d, names);
  }
  int Stat(const std::string& path, struct stat* st) override { return ::stat(path.c_str(), st); }
  int Lstat(const std::string& path, struct stat* st) override { return ::lstat(path.c_str(), st); }
  int Fstat(int fd, struct stat* st) override { return ::fstat(fd, st); }
  int StatAt(int dir_fd, const std::string& name, struct stat* st, int flags) override {
    return ::fstatat(dir_fd, name.c_str(), st, flags);
  }
  bool RealPath(const std::string& path, std::string* out) override {
    char* p = ::realpath(path.c_str(), nullptr);
    if (p == nullptr) return false;
    *out = p;
    std::free(p);
    return true;
  }
  ssize_t ReadLink(const std::string& path, std::string* out) override {
    char buf[PATH_MAX];
    const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf);
    if (n >= 0) out->assign(buf, size_t(n));
    return n;
  }

  int CreateNew(const std::string& path, mode_t mode) override {
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  }
  int CreateOrTruncate(const std::string& path, mode_t mode) override {
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
  }
  int OpenForWriting(const std::string& path, int flags) override {
    return ::open(path.c_str(), O_WRONLY | flags);
  }
  int MakeTempFile(std::string* name) override { return ::mkostemp(name->data(), O_CLOEXEC); }
  bool MakeTempFolder(std::string* name) override { return ::mkdtemp(name->data()) != nullptr; }
  int MakeFolder(const std::string& path, mode_t mode) override { return ::mkdir(path.c_str(), mode); }
  int Chmod(const std::string& path, mode_t mode) override { return ::chmod(path.c_str(), mode); }
  int Fchmod(int fd, mode_t mode) override { return ::fchmod(fd, mode); }

  ssize_t Write(int fd, const void* buf, size_t n) override { return ::write(fd, buf, n); }
  ssize_t WriteAt(int fd, const void* buf, size_t n, off_t offset) override {
    return ::pwrite(fd, buf, n, offset);
  }
  int Sync(int fd) override { return ::fsync(fd); }
  int Close(int fd) override { return ::close(fd); }

  int Rename(const std::string& from, const std::string& to) override {
    return std::rename(from.c_str(), to.c_str());
  }
  int Rename2(const std::string& from, const std::string& to, unsigned flags) override {
#if defined(__GLIBC__)
    return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags);
#elif defined(__APPLE__)
    // renameatx_np (macOS 10.12+): RENAME_EXCL is RENAME_NOREPLACE, RENAME_SWAP is RENAME_EXCHANGE
    // (ENOTSUP on a volume without swap, which staging.cc treats as renameat2's EINVAL).
    if ((flags & ~unsigned(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0) {
      errno = EINVAL;
      return -1;
    }
    unsigned mac = 0;
    if ((flags & RENAME_NOREPLACE) != 0) mac |= RENAME_EXCL;
    if ((flags & RENAME_EXCHANGE) != 0) mac |= RENAME_SWAP;
    return ::renameatx_np(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), mac);
#else
    // No atomic no-replace or exchange rename here: staging.cc then commits the portable way.
    (void)from, (void)to, (void)flags;
    errno = ENOSYS;
    return -1;
#endif
  }
  int Unlink(const std::string& path) override { return ::unlink(path.c_str()); }
  int RemoveFolder(const std::string& path) override { return ::rmdir(path.c_str()); }
  void RemoveTree(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::atomic<Env*>& CurrentSlot() {
  static std::atomic<Env*> current{Env::Default()};
  return current;
}

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv;  // never destroyed: a signal's cleanup may run at exit
  return env;
}

Env* Env::Current() { return CurrentSlot().load(std::memory_order_acquire); }

ScopedEnvForTesting::ScopedEnvForTesting(Env* env) : previous_(CurrentSlot().exchange(env)) {}

ScopedEnvForTesting::~ScopedEnvForTesting() { CurrentSlot().store(previous_); }

}  // namespace palettize
