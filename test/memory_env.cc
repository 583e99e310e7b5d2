// The in-memory Env of memory_env.h: the Env's calls. Every method takes the one lock: the
// palettizer writes from several threads, and the tree is small. Faults, crashes and the tree
// helpers: memory_env_tree.cc.
#include "memory_env.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "memory_env_node.h"
#include "util/staging.h"

namespace palettize {

namespace {
constexpr dev_t kDevice = 0x4d454d;  // "MEM"
constexpr int kMaxLinks = 40;        // Linux's MAXSYMLINKS
constexpr size_t kPage = 4096;

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

int Fail(int err) {
  errno = err;
  return -1;
}
}  // namespace

MemoryEnv::MemoryEnv() {
  root_ = NewNode(Kind::kFolder, 0755);
  root_->parent = root_;
}

MemoryEnv::~MemoryEnv() {
  for (auto& [p, size] : maps_) std::free(p);
  // Folders point to their parents weakly; children own nothing upward, so the tree frees itself.
}

MemoryEnv::NodeP MemoryEnv::NewNode(Kind kind, mode_t mode) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->perm = mode & 07777;
  n->ino = next_ino_++;
  return n;
}

void MemoryEnv::Attach(const NodeP& dir, const std::string& name, const NodeP& node) {
  dir->children[name] = node;
  if (node->kind == Kind::kFolder) {
    node->parent = dir;
    node->name = name;
  }
}

void MemoryEnv::Detach(const NodeP& dir, const std::string& name) {
  auto it = dir->children.find(name);
  if (it == dir->children.end()) return;
  if (it->second->kind != Kind::kFolder && it->second->links > 0) --it->second->links;
  dir->children.erase(it);
}

std::string MemoryEnv::PathOf(const Node* folder) const {
  std::string path;
  while (folder != root_.get()) {
    path = "/" + folder->name + path;
    folder = folder->parent.lock().get();
  }
  return path.empty() ? "/" : path;
}

// Resolves `path` from `start` as the kernel does: links followed (the last one only with
// `follow_last`, or a trailing slash), at most kMaxLinks in all. Returns 0 or an errno.
int MemoryEnv::Walk(const NodeP& start, const std::string& path, bool follow_last, Where* out, int* links) {
  if (path.empty()) return ENOENT;
  NodeP cur = path[0] == '/' ? root_ : start;
  const std::vector<std::string> parts = SplitPath(path);
  const bool trailing = path.back() == '/';
  if (parts.empty()) {
    *out = {nullptr, "", cur};
    return 0;
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    const bool last = i + 1 == parts.size();
    NodeP next;
    if (part == "." || part == "..") {
      next = part == "." ? cur : cur->parent.lock();
      if (last) {
        *out = {nullptr, "", next};
        return 0;
      }
      cur = next;
      continue;
    }
    auto it = cur->children.find(part);
    NodeP child = it == cur->children.end() ? nullptr : it->second;
    if (child != nullptr && child->kind == Kind::kLink && (!last || follow_last || trailing)) {
      if (++*links > kMaxLinks) return ELOOP;
      Where target;
      if (const int rc = Walk(cur, child->data, true, &target, links); rc != 0) return rc;
      if (last) {
        *out = target;
        if (trailing && target.node != nullptr && target.node->kind != Kind::kFolder) return ENOTDIR;
        return 0;
      }
      child = target.node;
    }
    if (last) {
      if (trailing && child != nullptr && child->kind != Kind::kFolder) return ENOTDIR;
      *out = {cur, part, child};
      return 0;
    }
    if (child == nullptr) return ENOENT;
    if (child->kind != Kind::kFolder) return ENOTDIR;
    cur = child;
  }
  return 0;  // not reached: the last part returns
}

int MemoryEnv::Find(int dir_fd, const std::string& path, bool follow_last, Where* out) {
  NodeP start = root_;
  if (!path.empty() && path[0] != '/' && dir_fd != AT_FDCWD) {
    Descriptor* d = Fd(dir_fd);
    if (d == nullptr) return EBADF;
    if (d->node->kind != Kind::kFolder) return ENOTDIR;
    start = d->node;
  }
  int links = 0;
  return Walk(start, path, follow_last, out, &links);
}

MemoryEnv::Descriptor* MemoryEnv::Fd(int fd) {
  auto it = fds_.find(fd);
  return it == fds_.end() ? nullptr : it->second.get();
}

bool MemoryEnv::Mutation(FaultOp op) {
  if (crashed_) {
    errno = EIO;
    return false;
  }
  ++mutations_;
  ++counts_[size_t(op)];
  if (crash_at_ > 0 && mutations_ == crash_at_) {
    crashed_ = fired_ = true;
    errno = EIO;
    return false;
  }
  if ((op != FaultOp::kNone && op == fail_op_ && counts_[size_t(op)] == fail_nth_) ||
      mutations_ == fail_any_nth_) {
    fired_ = true;
    errno = fail_err_;
    return false;
  }
  return true;
}

uint64_t MemoryEnv::UsedBytes(const Node& n) const {
  if (n.kind == Kind::kFile) return n.data.size();
  uint64_t sum = 0;
  for (const auto& [name, child] : n.children) sum += UsedBytes(*child);
  return sum;
}

void MemoryEnv::Fill(const Node& n, struct stat* st) const {
  std::memset(st, 0, sizeof *st);
  st->st_dev = kDevice;
  st->st_ino = n.ino;
  mode_t type = S_IFREG;
  switch (n.kind) {
    case Kind::kFile: type = S_IFREG; break;
    case Kind::kFolder: type = S_IFDIR; break;
    case Kind::kLink: type = S_IFLNK; break;
    case Kind::kFifo: type = S_IFIFO; break;
    case Kind::kFullDevice: type = S_IFCHR; break;
  }
  st->st_mode = type | n.perm;
  if (n.kind == Kind::kFolder) {
    st->st_nlink = 2;
    for (const auto& [name, child] : n.children) st->st_nlink += child->kind == Kind::kFolder ? 1 : 0;
    st->st_size = 4096;
  } else {
    st->st_nlink = n.links;
    st->st_size = off_t(n.kind == Kind::kFile || n.kind == Kind::kLink ? n.data.size() : 0);
  }
  if (n.kind == Kind::kFullDevice) st->st_rdev = makedev(1, 7);
  st->st_blksize = blksize_t(kPage);
  st->st_blocks = blkcnt_t((st->st_size + 511) / 512);
}

// ---- Reading.

int MemoryEnv::OpenLocked(int dir_fd, const std::string& path, int flags, mode_t mode) {
  const int access = flags & O_ACCMODE;
  const bool exclusive = (flags & O_CREAT) && (flags & O_EXCL);
  Where w;
  if (const int rc = Find(dir_fd, path, !(flags & O_NOFOLLOW) && !exclusive, &w); rc != 0) return Fail(rc);
  NodeP node = w.node;
  if (node != nullptr && exclusive) return Fail(EEXIST);
  if (node != nullptr && node->kind == Kind::kLink) return Fail(ELOOP);  // O_NOFOLLOW
  if (node == nullptr) {
    if (!(flags & O_CREAT)) return Fail(ENOENT);
    if (w.dir == nullptr) return Fail(EISDIR);
    if (flags & O_DIRECTORY) return Fail(EINVAL);
    node = NewNode(Kind::kFile, mode & ~mode_t(ProcessUmask()));
    Attach(w.dir, w.name, node);
  } else {
    if ((flags & O_DIRECTORY) && node->kind != Kind::kFolder) return Fail(ENOTDIR);
    if (node->kind == Kind::kFolder && access != O_RDONLY) return Fail(EISDIR);
    // A FIFO with no reader: open for writing would block, or fail ENXIO with O_NONBLOCK.
    if (node->kind == Kind::kFifo && access != O_RDONLY) return Fail(ENXIO);
    if (node->kind == Kind::kFile && (flags & O_TRUNC) && access != O_RDONLY) node->data.clear();
  }
  auto d = std::make_unique<Descriptor>();
  d->node = node;
  d->flags = flags;
  const int fd = next_fd_++;
  fds_[fd] = std::move(d);
  return fd;
}

int MemoryEnv::Open(const std::string& path, int flags) {
  std::lock_guard<std::mutex> lock(mu_);
  if ((flags & O_CREAT) && !Mutation(FaultOp::kCreate)) return -1;
  return OpenLocked(AT_FDCWD, path, flags, 0666);
}

int MemoryEnv::OpenAt(int dir_fd, const std::string& name, int flags) {
  std::lock_guard<std::mutex> lock(mu_);
  if ((flags & O_CREAT) && !Mutation(FaultOp::kCreate)) return -1;
  return OpenLocked(dir_fd, name, flags, 0666);
}

ssize_t MemoryEnv::Read(int fd, void* buf, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(fd);
  if (d == nullptr || (d->flags & O_ACCMODE) == O_WRONLY) return Fail(EBADF);
  const Node& node = *d->node;
  switch (node.kind) {
    case Kind::kFolder: return Fail(EISDIR);
    case Kind::kFifo: return 0;  // no writer: end of file
    case Kind::kFullDevice: std::memset(buf, 0, n); return ssize_t(n);
    case Kind::kLink: return Fail(EBADF);
    case Kind::kFile: break;
  }
  if (size_t(d->offset) >= node.data.size()) return 0;
  const size_t got = std::min(n, node.data.size() - size_t(d->offset));
  std::memcpy(buf, node.data.data() + d->offset, got);
  d->offset += off_t(got);
  return ssize_t(got);
}

ssize_t MemoryEnv::ReadAt(int fd, void* buf, size_t n, off_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(fd);
  if (d == nullptr || (d->flags & O_ACCMODE) == O_WRONLY) return Fail(EBADF);
  if (offset < 0) return Fail(EINVAL);
  const Node& node = *d->node;
  if (node.kind == Kind::kFolder) return Fail(EISDIR);
  if (node.kind == Kind::kFifo) return Fail(ESPIPE);
  if (node.kind == Kind::kFullDevice) {
    std::memset(buf, 0, n);
    return ssize_t(n);
  }
  if (size_t(offset) >= node.data.size()) return 0;
  const size_t got = std::min(n, node.data.size() - size_t(offset));
  std::memcpy(buf, node.data.data() + offset, got);
  return ssize_t(got);
}

void* MemoryEnv::Map(int fd, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(fd);
  if (d == nullptr) return errno = EBADF, nullptr;
  if (d->node->kind != Kind::kFile) return errno = ENODEV, nullptr;
  if (size == 0) return errno = EINVAL, nullptr;
  // A private copy, page-aligned as mmap's; bytes past the end of the file read as zeros.
  const size_t rounded = (size + kPage - 1) / kPage * kPage;
  void* p = std::aligned_alloc(kPage, rounded);
  if (p == nullptr) return errno = ENOMEM, nullptr;
  std::memset(p, 0, rounded);
  std::memcpy(p, d->node->data.data(), std::min(size, d->node->data.size()));
  maps_[p] = size;
  return p;
}

void MemoryEnv::Unmap(void* p, size_t /*size*/) {
  std::lock_guard<std::mutex> lock(mu_);
  if (maps_.erase(p) > 0) std::free(p);
}

int MemoryEnv::ListFolder(int dir_fd, std::vector<std::string>* names) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(dir_fd);
  if (d == nullptr) return Fail(EBADF);
  if (d->node->kind != Kind::kFolder) return Fail(ENOTDIR);
  names->clear();
  for (auto it = d->node->children.rbegin(); it != d->node->children.rend(); ++it)
    names->push_back(it->first);
  return 0;
}

int MemoryEnv::ListFolder(const std::string& path, std::vector<std::string>* names) {
  std::lock_guard<std::mutex> lock(mu_);
  Where w;
  if (const int rc = Find(AT_FDCWD, path, true, &w); rc != 0) return Fail(rc);
  if (w.node == nullptr) return Fail(ENOENT);
  if (w.node->kind != Kind::kFolder) return Fail(ENOTDIR);
  names->clear();
  for (auto it = w.node->children.rbegin(); it != w.node->children.rend(); ++it) names->push_back(it->first);
  return 0;
}

int MemoryEnv::StatAt(int dir_fd, const std::string& name, struct stat* st, int flags) {
  std::lock_guard<std::mutex> lock(mu_);
  Where w;
  if (const int rc = Find(dir_fd, name, !(flags & AT_SYMLINK_NOFOLLOW), &w); rc != 0) return Fail(rc);
  if (w.node == nullptr) return Fail(ENOENT);
  Fill(*w.node, st);
  return 0;
}

int MemoryEnv::Stat(const std::string& path, struct stat* st) { return StatAt(AT_FDCWD, path, st, 0); }

int MemoryEnv::Lstat(const std::string& path, struct stat* st) {
  return StatAt(AT_FDCWD, path, st, AT_SYMLINK_NOFOLLOW);
}

int MemoryEnv::Fstat(int fd, struct stat* st) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(fd);
  if (d == nullptr) return Fail(EBADF);
  Fill(*d->node, st);
  return 0;
}

bool MemoryEnv::RealPath(const std::string& path, std::string* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Where w;
  if (const int rc = Find(AT_FDCWD, path, true, &w); rc != 0) return Fail(rc), false;
  if (w.node == nullptr) return Fail(ENOENT), false;
  if (w.node->kind == Kind::kFolder) {
    *out = PathOf(w.node.get());
  } else {
    const std::string dir = PathOf(w.dir.get());
    *out = dir == "/" ? "/" + w.name : dir + "/" + w.name;
  }
  return true;
}

ssize_t MemoryEnv::ReadLink(const std::string& path, std::string* out) {
  std::lock_guard<std::mutex> lock(mu_);
  Where w;
  if (const int rc = Find(AT_FDCWD, path, false, &w); rc != 0) return Fail(rc);
  if (w.node == nullptr) return Fail(ENOENT);
  if (w.node->kind != Kind::kLink) return Fail(EINVAL);
  *out = w.node->data;
  return ssize_t(out->size());
}

// ---- Creating.

int MemoryEnv::CreateNew(const std::string& path, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kCreate)) return -1;
  return OpenLocked(AT_FDCWD, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
}

int MemoryEnv::CreateOrTruncate(const std::string& path, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kCreate)) return -1;
  return OpenLocked(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, mode);
}

int MemoryEnv::OpenForWriting(const std::string& path, int flags) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kCreate)) return -1;
  return OpenLocked(AT_FDCWD, path, O_WRONLY | flags, 0666);
}

int MemoryEnv::MakeTempFile(std::string* name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kCreate)) return -1;
  if (name->size() < 6 || name->compare(name->size() - 6, 6, "XXXXXX") != 0) return Fail(EINVAL);
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint64_t r = SplitMix(++temp_counter_);
    for (size_t i = name->size() - 6; i < name->size(); ++i, r /= 62) (*name)[i] = kChars[r % 62];
    const int fd = OpenLocked(AT_FDCWD, *name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return Fail(EEXIST);
}

bool MemoryEnv::MakeTempFolder(std::string* name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kCreate)) return false;
  if (name->size() < 6 || name->compare(name->size() - 6, 6, "XXXXXX") != 0) return Fail(EINVAL), false;
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint64_t r = SplitMix(++temp_counter_);
    for (size_t i = name->size() - 6; i < name->size(); ++i, r /= 62) (*name)[i] = kChars[r % 62];
    Where w;
    if (const int rc = Find(AT_FDCWD, *name, false, &w); rc != 0) return Fail(rc), false;
    if (w.node != nullptr) continue;
    Attach(w.dir, w.name, NewNode(Kind::kFolder, 0700 & ~mode_t(ProcessUmask())));
    return true;
  }
  return Fail(EEXIST), false;
}

int MemoryEnv::MakeFolder(const std::string& path, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kMkdir)) return -1;
  Where w;
  if (const int rc = Find(AT_FDCWD, path, false, &w); rc != 0) return Fail(rc);
  if (w.node != nullptr) return Fail(EEXIST);  // a dangling link too: mkdir never follows one
  // As Linux: a folder made in a setgid folder is setgid.
  const mode_t setgid = w.dir->perm & S_ISGID;
  Attach(w.dir, w.name, NewNode(Kind::kFolder, ((mode & 0777) & ~mode_t(ProcessUmask())) | setgid));
  return 0;
}

int MemoryEnv::Chmod(const std::string& path, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kChmod)) return -1;
  Where w;
  if (const int rc = Find(AT_FDCWD, path, true, &w); rc != 0) return Fail(rc);
  if (w.node == nullptr) return Fail(ENOENT);
  w.node->perm = mode & 07777;
  return 0;
}

int MemoryEnv::Fchmod(int fd, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(fd);
  if (d == nullptr) return Fail(EBADF);
  if (!Mutation(FaultOp::kChmod)) return -1;
  d->node->perm = mode & 07777;
  return 0;
}

// ---- Writing.

ssize_t MemoryEnv::WriteAt(int fd, const void* buf, size_t n, off_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(fd);
  if (d == nullptr || (d->flags & O_ACCMODE) == O_RDONLY) return Fail(EBADF);
  d->written = true;
  if (!Mutation(FaultOp::kWrite)) return -1;
  if (offset < 0) return Fail(EINVAL);
  Node& node = *d->node;
  if (node.kind == Kind::kFullDevice) return Fail(ENOSPC);
  if (node.kind != Kind::kFile) return Fail(EBADF);
  const uint64_t end = uint64_t(offset) + n;
  const uint64_t growth = end > node.data.size() ? end - node.data.size() : 0;
  if (growth > 0 && space_limit_ != UINT64_MAX) {
    const uint64_t used = UsedBytes(*root_);
    const uint64_t room = used < space_limit_ ? space_limit_ - used : 0;
    if (growth > room) {
      if (room == 0 || n <= growth - room) return Fail(ENOSPC);
      n -= size_t(growth - room);
    }
  }
  if (node.data.size() < size_t(offset) + n) node.data.resize(size_t(offset) + n);
  std::memcpy(&node.data[size_t(offset)], buf, n);
  return ssize_t(n);
}

ssize_t MemoryEnv::Write(int fd, const void* buf, size_t n) {
  off_t offset;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Descriptor* d = Fd(fd);
    if (d == nullptr) return Fail(EBADF);
    offset = d->offset;
  }
  // One writer per descriptor in palettize; the offset is advanced by what was written.
  const ssize_t w = WriteAt(fd, buf, n, offset);
  if (w > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    if (Descriptor* d = Fd(fd)) d->offset = offset + w;
  }
  return w;
}

int MemoryEnv::Sync(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  Descriptor* d = Fd(fd);
  if (d == nullptr) return Fail(EBADF);
  if (!Mutation(FaultOp::kSync)) return -1;
  switch (d->node->kind) {
    case Kind::kFile: d->node->synced = d->node->data; return 0;
    case Kind::kFolder: return 0;  // names are kept in order anyway (the crash model)
    default: return Fail(EINVAL);  // as fsync on a pipe or a character device
  }
}

int MemoryEnv::Close(int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = fds_.find(fd);
  if (it == fds_.end()) return Fail(EBADF);
  const bool written = it->second->written;
  fds_.erase(it);  // gone whatever the result, as close(2) on Linux
  if (written && !Mutation(FaultOp::kClose)) return -1;
  return 0;
}

// ---- Renaming and removing.

int MemoryEnv::RenameLocked(const std::string& from, const std::string& to, unsigned flags) {
  const bool exchange = flags & RENAME_EXCHANGE, noreplace = flags & RENAME_NOREPLACE;
  if ((flags & ~unsigned(RENAME_EXCHANGE | RENAME_NOREPLACE)) != 0 || (exchange && noreplace))
    return Fail(EINVAL);
  Where f, t;
  if (const int rc = Find(AT_FDCWD, from, false, &f); rc != 0) return Fail(rc);
  if (f.node == nullptr) return Fail(ENOENT);
  if (const int rc = Find(AT_FDCWD, to, false, &t); rc != 0) return Fail(rc);
  if (f.dir == nullptr || t.dir == nullptr) return Fail(EBUSY);  // ".", ".." or "/"
  if (exchange && t.node == nullptr) return Fail(ENOENT);
  if (noreplace && t.node != nullptr) return Fail(EEXIST);
  if (t.node == f.node) return 0;  // one file: nothing to do
  // A folder moved into itself or below itself.
  auto inside = [](Node* dir, const Node* folder) {
    for (;;) {
      if (dir == folder) return true;
      Node* up = dir->parent.lock().get();
      if (up == dir) return false;
      dir = up;
    }
  };
  if (f.node->kind == Kind::kFolder && inside(t.dir.get(), f.node.get())) return Fail(EINVAL);
  if (exchange) {
    if (t.node->kind == Kind::kFolder && inside(f.dir.get(), t.node.get())) return Fail(EINVAL);
    const NodeP a = f.node, b = t.node;
    Attach(f.dir, f.name, b);
    Attach(t.dir, t.name, a);
    return 0;
  }
  if (t.node != nullptr) {
    if (f.node->kind == Kind::kFolder) {
      if (t.node->kind != Kind::kFolder) return Fail(ENOTDIR);
      if (!t.node->children.empty()) return Fail(ENOTEMPTY);
    } else if (t.node->kind == Kind::kFolder) {
      return Fail(EISDIR);
    }
    Detach(t.dir, t.name);
  }
  const NodeP moved = f.node;
  f.dir->children.erase(f.name);
  Attach(t.dir, t.name, moved);
  return 0;
}

int MemoryEnv::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kRename)) return -1;
  return RenameLocked(from, to, 0);
}

int MemoryEnv::Rename2(const std::string& from, const std::string& to, unsigned flags) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kRename)) return -1;
  return RenameLocked(from, to, flags);
}

int MemoryEnv::Unlink(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kNone)) return -1;
  Where w;
  if (const int rc = Find(AT_FDCWD, path, false, &w); rc != 0) return Fail(rc);
  if (w.node == nullptr) return Fail(ENOENT);
  if (w.dir == nullptr || w.node->kind == Kind::kFolder) return Fail(EISDIR);
  Detach(w.dir, w.name);
  return 0;
}

int MemoryEnv::RemoveFolder(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kNone)) return -1;
  Where w;
  if (const int rc = Find(AT_FDCWD, path, false, &w); rc != 0) return Fail(rc);
  if (w.node == nullptr) return Fail(ENOENT);
  if (w.node->kind != Kind::kFolder) return Fail(ENOTDIR);
  if (w.dir == nullptr) return Fail(w.node == root_ ? EBUSY : EINVAL);
  if (!w.node->children.empty()) return Fail(ENOTEMPTY);
  Detach(w.dir, w.name);
  return 0;
}

void MemoryEnv::RemoveTree(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!Mutation(FaultOp::kNone)) return;
  Where w;
  if (Find(AT_FDCWD, path, false, &w) != 0 || w.node == nullptr || w.dir == nullptr) return;
  Detach(w.dir, w.name);  // never follows a link: a link is removed as a name
}

}  // namespace palettize
