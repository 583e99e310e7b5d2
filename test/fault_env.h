// A fault-injecting Env for tests: the real file system (Env::Default()), except that the Nth call
// of one kind of operation fails with a chosen errno. A run with no fault chosen counts the calls
// of each kind, so a test can fail each one in turn. Faults are injected on the real file system,
// not an in-memory one, because what the tests assert is what a failed run leaves on disk.
#pragma once

#include <cerrno>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "util/env.h"

namespace palettize {

// The kinds of operation that change the file system, each failed in turn. kClose counts only
// descriptors written to: a failed close of a file only read, or of an empty placeholder about to
// be renamed over (the portable commit's OUT.old-XXXXXX), loses nothing and is no error.
enum class FaultOp { kCreate, kWrite, kSync, kClose, kRename, kMkdir, kChmod, kNone };
inline constexpr FaultOp kFaultOps[] = {FaultOp::kCreate, FaultOp::kWrite, FaultOp::kSync, FaultOp::kClose,
                                        FaultOp::kRename, FaultOp::kMkdir, FaultOp::kChmod};

inline const char* FaultOpName(FaultOp op) {
  switch (op) {
    case FaultOp::kCreate: return "create";
    case FaultOp::kWrite: return "write";
    case FaultOp::kSync: return "sync";
    case FaultOp::kClose: return "close";
    case FaultOp::kRename: return "rename";
    case FaultOp::kMkdir: return "mkdir";
    case FaultOp::kChmod: return "chmod";
    case FaultOp::kNone: break;
  }
  return "none";
}

class FaultEnv final : public Env {
 public:
  // Fails the `nth` call (from 1) of `op` with `err`; FaultOp::kNone only counts.
  explicit FaultEnv(FaultOp op = FaultOp::kNone, int nth = 0, int err = EIO)
      : op_(op), nth_(nth), err_(err) {}

  int calls(FaultOp op) const {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[size_t(op)];
  }
  bool fired() const {
    std::lock_guard<std::mutex> lock(mu_);
    return fired_;
  }

  int Open(const std::string& path, int flags) override { return base_->Open(path, flags); }
  int OpenAt(int dir_fd, const std::string& name, int flags) override {
    return base_->OpenAt(dir_fd, name, flags);
  }
  ssize_t Read(int fd, void* buf, size_t n) override { return base_->Read(fd, buf, n); }
  ssize_t ReadAt(int fd, void* buf, size_t n, off_t offset) override {
    return base_->ReadAt(fd, buf, n, offset);
  }
  void* Map(int fd, size_t size) override { return base_->Map(fd, size); }
  void Unmap(void* p, size_t size) override { base_->Unmap(p, size); }
  int ListFolder(int dir_fd, std::vector<std::string>* names) override {
    return base_->ListFolder(dir_fd, names);
  }
  int ListFolder(const std::string& path, std::vector<std::string>* names) override {
    return base_->ListFolder(path, names);
  }
  int Stat(const std::string& path, struct stat* st) override { return base_->Stat(path, st); }
  int Lstat(const std::string& path, struct stat* st) override { return base_->Lstat(path, st); }
  int Fstat(int fd, struct stat* st) override { return base_->Fstat(fd, st); }
  int StatAt(int dir_fd, const std::string& name, struct stat* st, int flags) override {
    return base_->StatAt(dir_fd, name, st, flags);
  }
  bool RealPath(const std::string& path, std::string* out) override { return base_->RealPath(path, out); }
  ssize_t ReadLink(const std::string& path, std::string* out) override { return base_->ReadLink(path, out); }

  int CreateNew(const std::string& path, mode_t mode) override {
    return Hit(FaultOp::kCreate) ? -1 : base_->CreateNew(path, mode);
  }
  int CreateOrTruncate(const std::string& path, mode_t mode) override {
    return Hit(FaultOp::kCreate) ? -1 : base_->CreateOrTruncate(path, mode);
  }
  int OpenForWriting(const std::string& path, int flags) override {
    return Hit(FaultOp::kCreate) ? -1 : base_->OpenForWriting(path, flags);
  }
  int MakeTempFile(std::string* name) override {
    return Hit(FaultOp::kCreate) ? -1 : base_->MakeTempFile(name);
  }
  bool MakeTempFolder(std::string* name) override {
    return !Hit(FaultOp::kCreate) && base_->MakeTempFolder(name);
  }
  int MakeFolder(const std::string& path, mode_t mode) override {
    return Hit(FaultOp::kMkdir) ? -1 : base_->MakeFolder(path, mode);
  }
  int Chmod(const std::string& path, mode_t mode) override {
    return Hit(FaultOp::kChmod) ? -1 : base_->Chmod(path, mode);
  }
  int Fchmod(int fd, mode_t mode) override { return Hit(FaultOp::kChmod) ? -1 : base_->Fchmod(fd, mode); }

  ssize_t Write(int fd, const void* buf, size_t n) override {
    Written(fd);
    return Hit(FaultOp::kWrite) ? -1 : base_->Write(fd, buf, n);
  }
  ssize_t WriteAt(int fd, const void* buf, size_t n, off_t offset) override {
    Written(fd);
    return Hit(FaultOp::kWrite) ? -1 : base_->WriteAt(fd, buf, n, offset);
  }
  int Sync(int fd) override { return Hit(FaultOp::kSync) ? -1 : base_->Sync(fd); }
  int Close(int fd) override {
    bool written;
    {
      std::lock_guard<std::mutex> lock(mu_);
      written = written_.erase(fd) > 0;
    }
    // As close(2) on Linux: the descriptor is gone even when the close reports an error.
    const int rc = base_->Close(fd);
    if (written && Hit(FaultOp::kClose)) return -1;
    return rc;
  }

  int Rename(const std::string& from, const std::string& to) override {
    return Hit(FaultOp::kRename) ? -1 : base_->Rename(from, to);
  }
  int Rename2(const std::string& from, const std::string& to, unsigned flags) override {
    return Hit(FaultOp::kRename) ? -1 : base_->Rename2(from, to, flags);
  }
  int Unlink(const std::string& path) override { return base_->Unlink(path); }
  int RemoveFolder(const std::string& path) override { return base_->RemoveFolder(path); }
  void RemoveTree(const std::string& path) override { base_->RemoveTree(path); }

 private:
  // Counts a call of `op`; true (errno set) if it is the one to fail.
  bool Hit(FaultOp op) {
    std::lock_guard<std::mutex> lock(mu_);
    if (++counts_[size_t(op)] != nth_ || op != op_) return false;
    fired_ = true;
    errno = err_;
    return true;
  }
  void Written(int fd) {
    std::lock_guard<std::mutex> lock(mu_);
    written_.insert(fd);
  }

  Env* const base_ = Env::Default();
  const FaultOp op_;
  const int nth_;
  const int err_;
  mutable std::mutex mu_;
  int counts_[size_t(FaultOp::kNone) + 1] = {};
  bool fired_ = false;
  std::set<int> written_;  // descriptors written to, not yet closed
};

}  // namespace palettize
