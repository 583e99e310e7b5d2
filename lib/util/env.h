// The file-system seam (in the spirit of LevelDB's Env and ninja's DiskInterface): every read,
// write, sync, rename, folder creation and listing palettize does goes through the Env in use, so
// that a test can fail any one of them (test/fault_env.h) and check what the run leaves behind.
//
// The operations are the system calls the code used before the seam existed, one method each,
// with their contract: -1 (or nullptr, or false) and `errno` set on failure. Keeping errno as the
// error channel leaves every caller's wording ("OUT: cannot write: No space left on device") and
// every retry rule (EINTR, EEXIST, ENOENT after a concurrent rename) exactly as it was.
//
// The rules built on these calls live once, above the seam, in util: which names are temporaries
// and how they are created and committed (staging.h), which paths a run may touch (path_rules.h),
// that no link inside a package is followed and only regular files are read (safe_input.h).
//
// Which Env: Env::Current(), process-wide, is Env::Default() (POSIX) unless a test installed
// another with ScopedEnvForTesting. One global rather than a parameter threaded through every
// writer: the command spines (compress, checkpoint, decompress, batch) then need no change, and
// a signal's cleanup (staged_registry.h), which has no caller to pass one, uses the same Env.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE: glibc's, with _GNU_SOURCE (g++ and clang++ set it)
#include <string>
#include <vector>

// Rename2's flags are Linux's renameat2(2) flags. Where the C library has none (macOS, the BSDs,
// musl) they get Linux's values here, and the POSIX Env maps them to the platform's call.
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1U << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1U << 1)
#endif

namespace palettize {

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX file system; lives for the whole process.
  static Env* Default();
  // The Env every file access uses now (thread-safe to read).
  static Env* Current();

  // ---- Reading. `flags` are open(2)'s; none of these creates anything.
  virtual int Open(const std::string& path, int flags) = 0;
  virtual int OpenAt(int dir_fd, const std::string& name, int flags) = 0;
  virtual ssize_t Read(int fd, void* buf, size_t n) = 0;
  virtual ssize_t ReadAt(int fd, void* buf, size_t n, off_t offset) = 0;
  // PROT_READ, MAP_PRIVATE; nullptr on failure. Unmap never fails in a way callers could act on.
  virtual void* Map(int fd, size_t size) = 0;
  virtual void Unmap(void* p, size_t size) = 0;
  // The names in the open folder `dir_fd`, without "." and "..", in the order the file system
  // gives them; all of them, however often it was listed before. `dir_fd` stays open and owned
  // by the caller.
  virtual int ListFolder(int dir_fd, std::vector<std::string>* names) = 0;
  // The names in the folder `path`, as above (a search of folders the user named, not a package).
  virtual int ListFolder(const std::string& path, std::vector<std::string>* names) = 0;
  virtual int Stat(const std::string& path, struct stat* st) = 0;
  virtual int Lstat(const std::string& path, struct stat* st) = 0;
  virtual int Fstat(int fd, struct stat* st) = 0;
  virtual int StatAt(int dir_fd, const std::string& name, struct stat* st, int flags) = 0;
  // realpath(3): every link, "." and ".." resolved; false if any part is missing.
  virtual bool RealPath(const std::string& path, std::string* out) = 0;
  // readlink(2) into `out`; -1 if `path` is not a link.
  virtual ssize_t ReadLink(const std::string& path, std::string* out) = 0;

  // ---- Creating. Files are created with O_CLOEXEC; `mode` is before the umask.
  // A new file, exclusively, never through a link (O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW).
  virtual int CreateNew(const std::string& path, mode_t mode) = 0;
  // A file replaced if it exists, never through a link (O_WRONLY|O_CREAT|O_TRUNC|O_NOFOLLOW).
  virtual int CreateOrTruncate(const std::string& path, mode_t mode) = 0;
  // An existing file opened for writing in place (a device, a pipe): open(path, O_WRONLY|flags).
  virtual int OpenForWriting(const std::string& path, int flags) = 0;
  // mkostemp / mkdtemp: `name` ends in "XXXXXX", replaced by random characters; the file or
  // folder is created exclusively (0600 / 0700) under a name no one had.
  virtual int MakeTempFile(std::string* name) = 0;
  virtual bool MakeTempFolder(std::string* name) = 0;
  virtual int MakeFolder(const std::string& path, mode_t mode) = 0;
  virtual int Chmod(const std::string& path, mode_t mode) = 0;
  virtual int Fchmod(int fd, mode_t mode) = 0;

  // ---- Writing.
  virtual ssize_t Write(int fd, const void* buf, size_t n) = 0;
  virtual ssize_t WriteAt(int fd, const void* buf, size_t n, off_t offset) = 0;
  virtual int Sync(int fd) = 0;
  // Closes `fd` whatever the result (as close(2) on Linux); -1 reports a deferred write error.
  virtual int Close(int fd) = 0;

  // ---- Renaming and removing.
  virtual int Rename(const std::string& from, const std::string& to) = 0;
  // renameat2(2) with RENAME_NOREPLACE or RENAME_EXCHANGE; EINVAL/ENOSYS where unsupported.
  virtual int Rename2(const std::string& from, const std::string& to, unsigned flags) = 0;
  virtual int Unlink(const std::string& path) = 0;
  virtual int RemoveFolder(const std::string& path) = 0;  // an empty one (rmdir)
  // A file or a folder tree, never following a link; a missing path is no error. Best effort:
  // it is the cleanup after a failure, which has no one left to report to.
  virtual void RemoveTree(const std::string& path) = 0;
};

// Installs `env` as Env::Current() for its lifetime, then restores the one before. For tests; not
// to be nested across threads.
class ScopedEnvForTesting {
 public:
  explicit ScopedEnvForTesting(Env* env);
  ~ScopedEnvForTesting();
  ScopedEnvForTesting(const ScopedEnvForTesting&) = delete;
  ScopedEnvForTesting& operator=(const ScopedEnvForTesting&) = delete;

 private:
  Env* previous_;
};

}  // namespace palettize
