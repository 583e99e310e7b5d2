// An in-memory Env for tests (lib/util/env.h): a tree of folders, regular files, symbolic links
// and special files (a FIFO, a /dev/full-like character device) with the POSIX semantics the code
// relies on, errno values as Linux gives them; faults injected at any call; and crashes simulated.
//
// Paths: absolute, "/" is the root of the memory tree (a relative path is taken from "/"). Links
// are resolved as the kernel does (relative to the link's folder, 40 at most, then ELOOP); "." and
// ".." are walked. Descriptors have their own offset and access mode; OpenAt and StatAt take a
// folder descriptor or AT_FDCWD. Every node has one inode number on one device (st_dev), stable
// across renames. ListFolder gives names in descending order, so that code relying on an order it
// did not ask for shows up. No permission checks: palettize checks none (and runs as root in CI);
// modes are kept, with the umask applied at creation as the kernel does.
//
// Faults: the Nth call of one kind (test/fault_env.h's FaultOp), or the Nth mutating call of any
// kind, fails with a chosen errno and changes nothing (a failed Close still releases the
// descriptor, as close(2) on Linux). A space limit makes writes past it fail with ENOSPC.
//
// Crashes (after LevelDB's fault-injection Env): CrashAtMutation(n) freezes the file system just
// before the nth mutating call (every later one fails with EIO and changes nothing: the process is
// dead, so its cleanup never happens); SimulateCrash() then keeps what a crash would keep. The model,
// the harshest a journaling file system (ext4 data=ordered with delayed allocation, xfs) allows:
//   - names (creations, renames, removals, modes) are kept in the order they were made, all of them
//     up to the crash: the journal commits metadata in order, and keeping the newest names is what
//     points them at the least synced data;
//   - a regular file's bytes are what they were at its last Sync (fsync); never synced: empty.
// So a file renamed into place without an fsync of its own is found empty or short after a crash.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fault_env.h"
#include "util/env.h"

namespace palettize {

class MemoryEnv final : public Env {
 public:
  enum class Kind { kFile, kFolder, kLink, kFifo, kFullDevice };

  MemoryEnv();
  ~MemoryEnv() override;
  MemoryEnv(const MemoryEnv&) = delete;
  MemoryEnv& operator=(const MemoryEnv&) = delete;

  // ---- Building and reading the tree (not counted, never failed; missing parents are created).
  void AddFile(const std::string& path, const std::string& bytes, mode_t mode = 0644);
  void AddFolder(const std::string& path, mode_t mode = 0755);
  void AddLink(const std::string& path, const std::string& target);
  void AddSpecial(const std::string& path, Kind kind);  // kFifo or kFullDevice
  // Copies a real file or folder tree (links as links, special files refused) to `to`.
  void CopyIn(const std::string& real_path, const std::string& to);
  // Copies a memory file or folder tree to the real `to` (which must not exist).
  void CopyOut(const std::string& path, const std::string& real_to);
  // Every node under `root` by relative path: a file's bytes, "<folder>", "<link> TARGET",
  // "<fifo>" or "<device>", each with its mode ("0644 bytes..."). Empty if `root` is missing.
  std::map<std::string, std::string> Snapshot(const std::string& root);
  // Every path in the tree, sorted.
  std::vector<std::string> AllPaths();
  bool Exists(const std::string& path);           // lstat succeeds
  std::string Contents(const std::string& path);  // a regular file's bytes ("" if none)

  // ---- Faults and crashes.
  // Fails the `nth` (from 1) call of `op` with `err`; FaultOp::kNone fails nothing.
  void FailCall(FaultOp op, int nth, int err = EIO);
  // Fails the `nth` mutating call, whatever its kind.
  void FailMutation(int nth, int err = EIO);
  // Writes that would make the files' total bytes exceed `bytes` fail with ENOSPC (a short write
  // first, as Linux gives).
  void SetSpaceLimit(uint64_t bytes);
  // Freezes the file system before the `nth` mutating call (see above).
  void CrashAtMutation(int nth);
  // Keeps what survives a crash (see above); closes every descriptor. Call after the run.
  void SimulateCrash();

  // Zeroes the counts below and forgets a fired fault (after a setup done through the Env).
  void ResetCounts();
  // Makes every file's bytes durable, as a sync of each would (the state a test starts from).
  void SyncAll();
  uint64_t used_bytes() const;  // the regular files' bytes, as the space limit counts them
  int calls(FaultOp op) const;
  int mutations() const;  // create, write, sync, close of a written file, rename, mkdir, chmod, remove
  bool fired() const;     // the chosen fault or crash happened
  size_t open_descriptors() const;
  size_t open_maps() const;

  // ---- Env.
  int Open(const std::string& path, int flags) override;
  int OpenAt(int dir_fd, const std::string& name, int flags) override;
  ssize_t Read(int fd, void* buf, size_t n) override;
  ssize_t ReadAt(int fd, void* buf, size_t n, off_t offset) override;
  void* Map(int fd, size_t size) override;
  void Unmap(void* p, size_t size) override;
  int ListFolder(int dir_fd, std::vector<std::string>* names) override;
  int ListFolder(const std::string& path, std::vector<std::string>* names) override;
  int Stat(const std::string& path, struct stat* st) override;
  int Lstat(const std::string& path, struct stat* st) override;
  int Fstat(int fd, struct stat* st) override;
  int StatAt(int dir_fd, const std::string& name, struct stat* st, int flags) override;
  bool RealPath(const std::string& path, std::string* out) override;
  ssize_t ReadLink(const std::string& path, std::string* out) override;
  int CreateNew(const std::string& path, mode_t mode) override;
  int CreateOrTruncate(const std::string& path, mode_t mode) override;
  int OpenForWriting(const std::string& path, int flags) override;
  int MakeTempFile(std::string* name) override;
  bool MakeTempFolder(std::string* name) override;
  int MakeFolder(const std::string& path, mode_t mode) override;
  int Chmod(const std::string& path, mode_t mode) override;
  int Fchmod(int fd, mode_t mode) override;
  ssize_t Write(int fd, const void* buf, size_t n) override;
  ssize_t WriteAt(int fd, const void* buf, size_t n, off_t offset) override;
  int Sync(int fd) override;
  int Close(int fd) override;
  int Rename(const std::string& from, const std::string& to) override;
  int Rename2(const std::string& from, const std::string& to, unsigned flags) override;
  int Unlink(const std::string& path) override;
  int RemoveFolder(const std::string& path) override;
  void RemoveTree(const std::string& path) override;

  struct Node;
  using NodeP = std::shared_ptr<Node>;
  struct Descriptor;

 private:
  // A name looked up: the folder holding it, its last component, and what it names (null if
  // nothing). `node` may be a folder reached by "." or "..", with `name` empty.
  struct Where {
    NodeP dir;
    std::string name;
    NodeP node;
  };

  int Walk(const NodeP& start, const std::string& path, bool follow_last, Where* out, int* links);
  int Find(int dir_fd, const std::string& path, bool follow_last, Where* out);
  int OpenLocked(int dir_fd, const std::string& path, int flags, mode_t mode);
  NodeP NewNode(Kind kind, mode_t mode);
  NodeP Ensure(const std::string& path);  // the folders of a path, made for Add*
  void Attach(const NodeP& dir, const std::string& name, const NodeP& node);
  void Detach(const NodeP& dir, const std::string& name);
  std::string PathOf(const Node* folder) const;
  void Fill(const Node& n, struct stat* st) const;
  int RenameLocked(const std::string& from, const std::string& to, unsigned flags);
  void SnapshotUnder(const NodeP& n, const std::string& rel, std::map<std::string, std::string>* out);
  bool Mutation(FaultOp op);  // counts; false (errno set) if this call fails
  Descriptor* Fd(int fd);
  uint64_t UsedBytes(const Node& n) const;

  mutable std::mutex mu_;
  NodeP root_;
  uint64_t next_ino_ = 2;
  int next_fd_ = 100;
  uint64_t temp_counter_ = 0;
  std::map<int, std::unique_ptr<Descriptor>> fds_;
  std::map<void*, size_t> maps_;
  int counts_[size_t(FaultOp::kNone) + 1] = {};
  int mutations_ = 0;
  FaultOp fail_op_ = FaultOp::kNone;
  int fail_nth_ = 0;
  int fail_any_nth_ = 0;
  int fail_err_ = EIO;
  int crash_at_ = 0;
  bool crashed_ = false;
  bool fired_ = false;
  uint64_t space_limit_ = UINT64_MAX;
};

}  // namespace palettize
