#include "util/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/env.h"
#include "util/safe_input.h"

namespace palettize {

namespace {
Status ErrnoStatus(const std::string& path, const char* what) {
  return Status::IOError(path + ": " + what + ": " + std::strerror(errno));
}
}  // namespace

MappedFile::~MappedFile() {
  if (data_ != nullptr && size_ > 0) Env::Current()->Unmap(const_cast<uint8_t*>(data_), size_);
}

Status MappedFile::Open(const std::string& path) {
  path_ = path;
  UniqueFd fd;
  struct stat st;
  PALETTIZE_RETURN_IF_ERROR(OpenRegularFile(path, &fd, &st));
  return Map(fd.get(), uint64_t(st.st_size));
}

Status MappedFile::OpenUnder(const std::string& root, const std::string& rel) {
  path_ = JoinPath(root, rel);
  UniqueFd fd;
  struct stat st;
  PALETTIZE_RETURN_IF_ERROR(palettize::OpenUnder(root, rel, &fd, &st));
  if (S_ISDIR(st.st_mode)) return Status::IOError(path_ + ": is a folder, expected a file");
  return Map(fd.get(), uint64_t(st.st_size));
}

Status MappedFile::Map(int fd, uint64_t size) {
  if (size > SIZE_MAX) return Status::IOError(path_ + ": too large to map");
  size_ = size_t(size);
  if (size_ > 0) {
    void* p = Env::Current()->Map(fd, size_);
    if (p == nullptr) {
      size_ = 0;
      return ErrnoStatus(path_, "cannot map");
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  return Status::OK();
}

void ReleaseMappedPages(const void* p, size_t n) {
  static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  // Whole pages only: the first and last may hold bytes of a neighbour still in use.
  const uintptr_t at = uintptr_t(p);
  const uintptr_t begin = (at + page - 1) / page * page;
  const uintptr_t end = (at + n) / page * page;
  if (end > begin)
    madvise(const_cast<char*>(static_cast<const char*>(p)) + (begin - at), end - begin, MADV_DONTNEED);
}

Status ReadFileToString(const std::string& path, std::string* out, uint64_t max_bytes,
                        const std::string& what) {
  UniqueFd fd;
  struct stat st;
  PALETTIZE_RETURN_IF_ERROR(OpenRegularFile(path, &fd, &st));
  return ReadAll(fd.get(), st, path, max_bytes, what, out);
}

Status WriteStringToFile(const std::string& path, const std::string& data) {
  Env* env = Env::Current();
  const int fd = env->CreateOrTruncate(path, 0666);
  if (fd < 0) return ErrnoStatus(path, "cannot create");
  for (size_t done = 0; done < data.size();) {
    const ssize_t w = env->Write(fd, data.data() + done, data.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      Status st = ErrnoStatus(path, "cannot write");
      env->Close(fd);
      return st;
    }
    done += size_t(w);
  }
  if (env->Close(fd) != 0) return ErrnoStatus(path, "cannot write");
  return Status::OK();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return Env::Current()->Lstat(path, &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return Env::Current()->Stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void RemoveTree(const std::string& path) { Env::Current()->RemoveTree(path); }

std::string Dirname(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a.back() == '/' ? a + b : a + "/" + b;
}

}  // namespace palettize
