#include "util/safe_input.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "util/env.h"
#include "util/file.h"

namespace palettize {

namespace {

Status ErrnoStatus(const std::string& path, const char* what) {
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}

const char* KindName(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

Status LinkRefused(const std::string& shown) {
  return Status::InvalidInput(shown + ": is a symbolic link; links inside a package are not followed");
}

// Inside a package: only regular files and folders.
Status CheckKindUnder(const struct stat& st, const std::string& shown) {
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return Status::OK();
  if (S_ISLNK(st.st_mode)) return LinkRefused(shown);
  return Status::InvalidInput(shown + ": is " + KindName(st.st_mode) +
                              "; only regular files and folders are read inside a package");
}

bool SameFile(const struct stat& a, const struct stat& b) {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && (a.st_mode & S_IFMT) == (b.st_mode & S_IFMT);
}

// "a//./b/" -> {"a", "b"}; ".." is refused (OpenUnder's callers keep to the root).
Status SplitRelative(const std::string& root, const std::string& rel, std::vector<std::string>* parts) {
  parts->clear();
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = std::min(rel.find('/', start), rel.size());
    std::string part = rel.substr(start, end - start);
    if (part == "..") return Status::InvalidInput(JoinPath(root, rel) + ": '..' leaves the package");
    if (!part.empty() && part != ".") parts->push_back(std::move(part));
    start = end + 1;
  }
  return Status::OK();
}

// Opens `name` in the folder `dir_fd` without following a link, after `lstat` showed a regular
// file or folder; a different file found at the open (swapped in since) is refused.
Status OpenChecked(int dir_fd, const std::string& name, const struct stat& lst, const std::string& shown,
                   UniqueFd* fd, struct stat* st) {
  const int flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (S_ISDIR(lst.st_mode) ? O_DIRECTORY : 0);
  Env* env = Env::Current();
  UniqueFd f(env->OpenAt(dir_fd, name, flags));
  if (f.get() < 0) {
    if (errno == ELOOP) return LinkRefused(shown);
    return ErrnoStatus(shown, "cannot open");
  }
  if (env->Fstat(f.get(), st) != 0) return ErrnoStatus(shown, "cannot stat");
  if (!SameFile(lst, *st)) return Status::IOError(shown + ": changed while being opened");
  *fd = std::move(f);
  return Status::OK();
}

Status Visit(const std::string& root, int dir_fd, const std::string& dir_rel, const std::string& name,
             int depth, const std::function<Status(const TreeEntry&)>& visit);

// Visits what the open folder `dir` (dir_rel below root) holds, sorted by name.
Status VisitChildren(const std::string& root, UniqueFd dir, const std::string& dir_rel, int depth,
                     const std::function<Status(const TreeEntry&)>& visit) {
  const std::string shown = JoinPath(root, dir_rel);
  std::vector<std::string> names;
  if (Env::Current()->ListFolder(dir.get(), &names) != 0) return ErrnoStatus(shown, "cannot list");
  std::sort(names.begin(), names.end());
  for (const std::string& name : names)
    PALETTIZE_RETURN_IF_ERROR(Visit(root, dir.get(), dir_rel, name, depth, visit));
  return Status::OK();
}

// Visits dir_rel/name (in the open folder dir_fd) and everything below it.
Status Visit(const std::string& root, int dir_fd, const std::string& dir_rel, const std::string& name,
             int depth, const std::function<Status(const TreeEntry&)>& visit) {
  TreeEntry e;
  e.rel = dir_rel.empty() ? name : dir_rel + "/" + name;
  e.shown = JoinPath(root, e.rel);
  e.parent_fd = dir_fd;
  e.name = name;
  if (Env::Current()->StatAt(dir_fd, name, &e.st, AT_SYMLINK_NOFOLLOW) != 0)
    return ErrnoStatus(e.shown, "cannot stat");
  PALETTIZE_RETURN_IF_ERROR(CheckKindUnder(e.st, e.shown));
  PALETTIZE_RETURN_IF_ERROR(visit(e));
  if (!S_ISDIR(e.st.st_mode)) return Status::OK();
  if (depth >= kMaxTreeDepth)
    return Status::InvalidInput(e.shown + ": folders nested more than " + std::to_string(kMaxTreeDepth) +
                                " deep");
  UniqueFd sub;
  struct stat st;
  PALETTIZE_RETURN_IF_ERROR(OpenChecked(dir_fd, name, e.st, e.shown, &sub, &st));
  return VisitChildren(root, std::move(sub), e.rel, depth + 1, visit);
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

int UniqueFd::release() {
  int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) Env::Current()->Close(fd_);
  fd_ = fd;
}

Status OpenRegularFile(const std::string& path, UniqueFd* fd, struct stat* st) {
  Env* env = Env::Current();
  struct stat before;
  if (env->Stat(path, &before) != 0) return ErrnoStatus(path, "cannot open");
  if (S_ISDIR(before.st_mode)) return Status::IOError(path + ": is a folder, expected a file");
  if (!S_ISREG(before.st_mode))
    return Status::IOError(path + ": is " + KindName(before.st_mode) + ", not a regular file");
  UniqueFd f(env->Open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (f.get() < 0) return ErrnoStatus(path, "cannot open");
  if (env->Fstat(f.get(), st) != 0) return ErrnoStatus(path, "cannot stat");
  if (!SameFile(before, *st)) return Status::IOError(path + ": changed while being opened");
  *fd = std::move(f);
  return Status::OK();
}

Status OpenUnder(const std::string& root, const std::string& rel, UniqueFd* fd, struct stat* st) {
  std::vector<std::string> parts;
  PALETTIZE_RETURN_IF_ERROR(SplitRelative(root, rel, &parts));
  Env* env = Env::Current();
  UniqueFd dir(env->Open(root, O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NONBLOCK));
  if (dir.get() < 0) return ErrnoStatus(root, "cannot open folder");
  if (env->Fstat(dir.get(), st) != 0) return ErrnoStatus(root, "cannot stat");
  std::string shown = root;
  for (size_t i = 0; i < parts.size(); ++i) {
    shown = JoinPath(shown, parts[i]);
    struct stat lst;
    if (env->StatAt(dir.get(), parts[i], &lst, AT_SYMLINK_NOFOLLOW) != 0)
      return ErrnoStatus(shown, "cannot open");
    PALETTIZE_RETURN_IF_ERROR(CheckKindUnder(lst, shown));
    if (i + 1 < parts.size() && !S_ISDIR(lst.st_mode)) return Status::IOError(shown + ": not a folder");
    UniqueFd next;
    PALETTIZE_RETURN_IF_ERROR(OpenChecked(dir.get(), parts[i], lst, shown, &next, st));
    dir = std::move(next);
  }
  *fd = std::move(dir);
  return Status::OK();
}

Status ReadAll(int fd, const struct stat& st, const std::string& path, uint64_t max_bytes,
               const std::string& what, std::string* out) {
  auto too_big = [&](uint64_t n) {
    std::string limit = std::to_string(max_bytes);
    if (max_bytes % (1u << 20) == 0) limit += " (" + std::to_string(max_bytes >> 20) + " MiB)";
    return Status::InvalidInput(path + ": " + std::to_string(n) + " bytes; " + what + " may have at most " +
                                limit);
  };
  if (uint64_t(st.st_size) > max_bytes) return too_big(uint64_t(st.st_size));
  out->clear();
  constexpr size_t kChunk = 1 << 20;
  size_t got = 0;
  for (;;) {
    // One byte past the limit tells a file that grew while read from one that ends at it.
    const size_t want = max_bytes - got < kChunk ? size_t(max_bytes - got) + 1 : kChunk;
    out->resize(got + want);
    ssize_t n = Env::Current()->Read(fd, &(*out)[got], want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(path, "cannot read");
    if (n == 0) break;
    got += size_t(n);
    if (got > max_bytes) return too_big(got);
  }
  out->resize(got);
  return Status::OK();
}

Status WalkUnder(const std::string& root, const std::string& rel,
                 const std::function<Status(const TreeEntry&)>& visit) {
  std::vector<std::string> parts;
  PALETTIZE_RETURN_IF_ERROR(SplitRelative(root, rel, &parts));
  std::string parent;
  for (size_t i = 0; i + 1 < parts.size(); ++i) parent = parent.empty() ? parts[i] : parent + "/" + parts[i];
  UniqueFd dir;
  struct stat st;
  PALETTIZE_RETURN_IF_ERROR(OpenUnder(root, parent, &dir, &st));
  if (!S_ISDIR(st.st_mode)) return Status::IOError(JoinPath(root, parent) + ": not a folder");
  if (!parts.empty()) return Visit(root, dir.get(), parent, parts.back(), 0, visit);
  return VisitChildren(root, std::move(dir), "", 1, visit);  // the root itself is not visited
}

Status CopyUnder(const std::string& root, const std::string& rel, const std::string& to,
                 const std::function<bool(const std::string& shown)>& skip) {
  std::vector<std::string> parts;
  PALETTIZE_RETURN_IF_ERROR(SplitRelative(root, rel, &parts));
  std::string base;
  for (const std::string& p : parts) base = base.empty() ? p : base + "/" + p;
  // The parent is not created here: a staged folder removed under the copy (a signal's cleanup)
  // must make the copy fail, not come back.
  std::vector<char> buf;
  Env* env = Env::Current();
  return WalkUnder(root, base, [&](const TreeEntry& e) -> Status {
    if (skip(e.shown)) return Status::OK();
    const std::string dst = e.rel.size() == base.size() ? to : JoinPath(to, e.rel.substr(base.size() + 1));
    if (S_ISDIR(e.st.st_mode)) {
      struct stat existing;
      if (env->MakeFolder(dst, 0777) != 0 &&
          !(errno == EEXIST && env->Lstat(dst, &existing) == 0 && S_ISDIR(existing.st_mode)))
        return ErrnoStatus(dst, "cannot create folder");
      return Status::OK();
    }
    UniqueFd in;
    struct stat st;
    PALETTIZE_RETURN_IF_ERROR(OpenChecked(e.parent_fd, e.name, e.st, e.shown, &in, &st));
    // Overlapping manifest items reach a file twice: the second copy replaces the first.
    UniqueFd out(env->CreateOrTruncate(dst, 0666));
    if (out.get() < 0) return ErrnoStatus(dst, "cannot create");
    buf.resize(1 << 20);
    for (;;) {
      ssize_t n = env->Read(in.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoStatus(e.shown, "cannot read");
      if (n == 0) break;
      for (ssize_t done = 0; done < n;) {
        ssize_t w = env->Write(out.get(), buf.data() + done, size_t(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return ErrnoStatus(dst, "cannot write");
        done += w;
      }
    }
    // Synced: the copy is part of an output about to be committed (util/staging.h, WriteNewFile).
    if (env->Sync(out.get()) != 0) return ErrnoStatus(dst, "cannot write");
    if (env->Close(out.release()) != 0) return ErrnoStatus(dst, "cannot write");
    return Status::OK();
  });
}

}  // namespace palettize
