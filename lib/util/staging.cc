#include "util/staging.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "util/already_exists.h"
#include "util/env.h"
#include "util/file.h"
#include "util/staged_registry.h"

namespace palettize {

namespace {

constexpr mode_t kFileMode = 0644;
constexpr mode_t kFolderMode = 0755;
// A target that keeps appearing and vanishing under concurrent runs: give up after this many tries.
constexpr int kPlaceAttempts = 64;

std::atomic<bool> no_renameat2{false};

bool Renameat2(const std::string& from, const std::string& to, unsigned flags) {
  if (no_renameat2) {
    errno = ENOSYS;
    return false;
  }
  return Env::Current()->Rename2(from, to, flags) == 0;
}

bool Unsupported(int err) { return err == EINVAL || err == ENOSYS || err == ENOTSUP; }

// A placeholder name beside `target`, created exclusively, of the given kind; "" on failure.
std::string MakeTemporary(const std::string& target, const char* infix, StagedOutput::Kind kind, int* fd) {
  Env* env = Env::Current();
  std::string name = target + infix + "XXXXXX";
  *fd = -1;
  if (kind == StagedOutput::Kind::kFolder) {
    if (!env->MakeTempFolder(&name)) return "";
    if (env->Chmod(name, kFolderMode & ~mode_t(ProcessUmask())) != 0) {
      const int err = errno;
      env->RemoveFolder(name);
      errno = err;
      return "";
    }
    return name;
  }
  *fd = env->MakeTempFile(&name);
  if (*fd < 0) return "";
  if (env->Fchmod(*fd, kFileMode & ~mode_t(ProcessUmask())) != 0) {
    const int err = errno;
    env->Close(*fd);
    env->Unlink(name);
    errno = err;
    *fd = -1;
    return "";
  }
  return name;
}

// Where descriptors of this process show as files: Linux's /proc/self/fd (and /dev/fd, a link to
// it), macOS's and the BSDs' /dev/fd (fdescfs, a folder of its own).
bool InDescriptorFolder(const std::string& path) {
  return path.compare(0, 6, "/proc/") == 0 || path == "/dev/fd" || path.compare(0, 8, "/dev/fd/") == 0;
}

// /dev/stdout, /dev/fd/1, /proc/self/fd/1: a descriptor of this process, whatever it is open on
// (a regular file when stdout is redirected). Beside it is /dev or /proc, not the file.
// /dev/stdout links to /proc/self/fd/1 on Linux, to the relative fd/1 on macOS.
bool NamesAnOpenFile(const std::string& path) {
  Env* env = Env::Current();
  std::string link, folder;
  if (env->ReadLink(path, &link) > 0) {
    if (link[0] != '/' && !Dirname(path).empty()) link = JoinPath(Dirname(path), link);
    if (InDescriptorFolder(link)) return true;
  }
  return env->RealPath(Dirname(path).empty() ? "." : Dirname(path), &folder) && InDescriptorFolder(folder);
}

Status WriteAll(int fd, const std::string& data, const std::string& path, const char* what) {
  const char* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    const ssize_t w = Env::Current()->Write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
    }
    p += w, n -= size_t(w);
  }
  return Status::OK();
}

}  // namespace

unsigned ProcessUmask() {
  static const unsigned mask = [] {
    // Not through the Env: the process's own state, read once, not a file of the run.
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
      if (line.compare(0, 6, "Umask:") == 0) return unsigned(std::strtoul(line.c_str() + 6, nullptr, 8));
    const mode_t old = ::umask(022);
    ::umask(old);
    return unsigned(old);
  }();
  return mask;
}

void DisableRenameat2ForTesting(bool disable) { no_renameat2 = disable; }

int CreateNewFile(const std::string& path) { return Env::Current()->CreateNew(path, kFileMode); }

Status WriteNewFile(const std::string& path, const std::string& data) {
  const int fd = CreateNewFile(path);
  if (fd < 0) return Status::IOError(path + ": cannot create: " + std::strerror(errno));
  Status st = WriteAll(fd, data, path, "cannot write");
  // Synced before the folder holding it is renamed into place: a crash after the rename must not
  // find the name with none of the bytes (the journal commits names, not data, in order).
  if (st.ok() && Env::Current()->Sync(fd) != 0)
    st = Status::IOError(path + ": cannot write: " + std::strerror(errno));
  if (Env::Current()->Close(fd) != 0 && st.ok())
    st = Status::IOError(path + ": cannot write: " + std::strerror(errno));
  return st;
}

Status MakeFolder(const std::string& path) {
  Env* env = Env::Current();
  if (env->MakeFolder(path, kFolderMode) == 0) {
    // Explicit: mkdir keeps the setgid bit of a setgid parent.
    if (env->Chmod(path, kFolderMode & ~mode_t(ProcessUmask())) != 0)
      return Status::IOError(path + ": cannot create folder: " + std::strerror(errno));
    return Status::OK();
  }
  struct stat st;
  if (errno != EEXIST || env->Lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
    if (errno == EEXIST) errno = ENOTDIR;
    return Status::IOError(path + ": cannot create folder: " + std::strerror(errno));
  }
  return Status::OK();
}

Status MakeFolders(const std::string& root, const std::string& rel) {
  std::string path = root;
  size_t begin = 0;
  while (begin <= rel.size()) {
    size_t end = rel.find('/', begin);
    if (end == std::string::npos) end = rel.size();
    const std::string part = rel.substr(begin, end - begin);
    begin = end + 1;
    if (part.empty() || part == ".") continue;
    path = JoinPath(path, part);
    PALETTIZE_RETURN_IF_ERROR(MakeFolder(path));
  }
  return Status::OK();
}

StagedOutput::~StagedOutput() { Discard(); }

Status StagedOutput::Failed(const char* what) const {
  // Named by the target the user asked for; the temporary beside it is ours.
  return Status::IOError(target_ + ": " + (what_ ? what_ : what) + ": " + std::strerror(errno));
}

Status StagedOutput::Begin(const std::string& target, Kind kind, bool overwrite, const char* what) {
  Discard();
  target_ = target;
  while (target_.size() > 1 && target_.back() == '/') target_.pop_back();
  kind_ = kind;
  overwrite_ = overwrite;
  what_ = what;
  placed_ = Placed::kNo;
  old_.clear();
  Env* env = Env::Current();
  struct stat st;
  const bool exists = env->Stat(target_, &st) == 0;
  if (kind == Kind::kFile &&
      ((exists && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) || NamesAnOpenFile(target_))) {
    fd_ = env->OpenForWriting(target_, O_NOCTTY | O_CLOEXEC | (exists && S_ISREG(st.st_mode) ? O_TRUNC : 0));
    if (fd_ < 0) return Failed("cannot create");
    in_place_ = true;
    path_ = target_;
    return Status::OK();
  }
  in_place_ = false;
  // Created and registered under the lock, so that a signal never finds one without the other.
  auto lock = LockStaged();
  path_ = MakeTemporary(target_, ".partial-", kind, &fd_);
  if (path_.empty()) return Failed(kind == Kind::kFolder ? "cannot create folder" : "cannot create");
  RegisterStaged(path_);
  return Status::OK();
}

Status StagedOutput::Close() {
  if (fd_ < 0) return Status::OK();
  Env* env = Env::Current();
  const int fd = fd_;
  fd_ = -1;
  // Special files (a pipe, a terminal) cannot be synced; that is no failure.
  if (env->Sync(fd) != 0 && !(in_place_ && (errno == EINVAL || errno == EROFS))) {
    Status st = Failed("cannot write");
    env->Close(fd);
    return st;
  }
  if (env->Close(fd) != 0) return Failed("cannot write");
  return Status::OK();
}

Status StagedOutput::Place() {
  for (int attempt = 0; attempt < kPlaceAttempts; ++attempt) {
    if (Renameat2(path_, target_, RENAME_NOREPLACE)) {
      placed_ = Placed::kNew;
      return Status::OK();
    }
    if (Unsupported(errno)) return PlaceWithoutRenameat2();
    if (errno != EEXIST) return Failed("cannot rename into place");
    if (!overwrite_) return AlreadyExists(target_);
    struct stat st;
    if (Env::Current()->Lstat(target_, &st) != 0) {
      if (errno == ENOENT) continue;  // removed meanwhile: place ours as new
      return Failed("cannot replace");
    }
    if (S_ISDIR(st.st_mode) != (kind_ == Kind::kFolder)) {
      errno = S_ISDIR(st.st_mode) ? EISDIR : ENOTDIR;
      return Failed("cannot replace");
    }
    if (Renameat2(path_, target_, RENAME_EXCHANGE)) {
      placed_ = Placed::kExchanged;
      old_ = path_;  // the staged name now holds the previous target
      return Status::OK();
    }
    if (errno == ENOENT) continue;
    if (Unsupported(errno)) return PlaceWithoutRenameat2();
    return Failed("cannot replace");
  }
  errno = EBUSY;
  return Failed("cannot rename into place");
}

Status StagedOutput::PlaceWithoutRenameat2() {
  Env* env = Env::Current();
  struct stat st;
  if (env->Lstat(target_, &st) != 0) {
    if (errno != ENOENT) return Failed("cannot replace");
    if (env->Rename(path_, target_) != 0) return Failed("cannot rename into place");
    placed_ = Placed::kNew;
    return Status::OK();
  }
  if (!overwrite_) return AlreadyExists(target_);
  if (S_ISDIR(st.st_mode) != (kind_ == Kind::kFolder)) {
    errno = S_ISDIR(st.st_mode) ? EISDIR : ENOTDIR;
    return Failed("cannot replace");
  }
  // The previous target is renamed onto a placeholder of its kind, which rename replaces whole.
  int fd;
  const std::string aside = MakeTemporary(target_, ".old-", kind_, &fd);
  if (aside.empty()) return Failed("cannot replace");
  if (fd >= 0) env->Close(fd);
  RegisterStaged(aside);
  if (env->Rename(target_, aside) != 0) {
    Status failed = Failed("cannot replace");
    RemoveTree(aside);
    UnregisterStaged(aside);
    return failed;
  }
  if (env->Rename(path_, target_) != 0) {
    Status failed = Failed("cannot rename into place");
    env->Rename(aside, target_);
    UnregisterStaged(aside);
    return failed;
  }
  old_ = aside;
  placed_ = Placed::kAside;
  return Status::OK();
}

void StagedOutput::Undo() {
  Env* env = Env::Current();
  switch (placed_) {
    case Placed::kNo: return;
    case Placed::kNew: env->Rename(target_, path_); break;
    case Placed::kExchanged: Renameat2(path_, target_, RENAME_EXCHANGE); break;
    case Placed::kAside:
      env->Rename(target_, path_);
      env->Rename(old_, target_);
      UnregisterStaged(old_);
      break;
  }
  old_.clear();
  placed_ = Placed::kNo;
}

void StagedOutput::Discard() {
  if (fd_ >= 0) Env::Current()->Close(fd_);
  fd_ = -1;
  if (path_.empty() || in_place_ || placed_ != Placed::kNo) return;
  RemoveTree(path_);
  UnregisterStaged(path_);
  path_.clear();
}

Status CommitStaged(const std::vector<StagedOutput*>& outputs) {
  for (StagedOutput* o : outputs)
    if (o->active()) PALETTIZE_RETURN_IF_ERROR(o->Close());
  std::vector<StagedOutput*> placed;
  {
    auto lock = LockStaged();
    for (StagedOutput* o : outputs) {
      if (!o->active() || o->in_place_) continue;
      Status st = o->Place();
      if (!st.ok()) {
        for (auto it = placed.rbegin(); it != placed.rend(); ++it) (*it)->Undo();
        return st;
      }
      placed.push_back(o);
    }
    // Until removed below, a previous target swapped out stays registered: a signal now removes it.
    for (StagedOutput* o : placed)
      if (o->path_ != o->old_) UnregisterStaged(o->path_);
  }
  for (StagedOutput* o : placed) {
    if (o->old_.empty()) continue;
    RemoveTree(o->old_);
    UnregisterStaged(o->old_);
  }
  return Status::OK();
}

Status StageText(const std::string& target, const std::string& text, StagedOutput* out, const char* what) {
  if (IsDirectory(target)) {
    errno = EISDIR;
    return Status::IOError(target + ": " + what + ": " + std::strerror(EISDIR));
  }
  PALETTIZE_RETURN_IF_ERROR(out->Begin(target, StagedOutput::Kind::kFile, /*overwrite=*/true, what));
  PALETTIZE_RETURN_IF_ERROR(WriteAll(out->fd(), text, target, what));
  return out->Close();
}

}  // namespace palettize
