// File-system access, kept narrow so parsers work on byte spans and only this file touches disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "palettize/status.h"

namespace palettize {

// A read-only memory map of a whole file. The input is never written through it.
class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps a file the user named (util/safe_input.h: regular files only, links followed).
  Status Open(const std::string& path);
  // Maps `rel` below the package folder `root`, following no link (util/safe_input.h OpenUnder).
  Status OpenUnder(const std::string& root, const std::string& rel);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  Status Map(int fd, uint64_t size);

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Tells the kernel the pages wholly inside [p, p+n) of a read-only file mapping are not needed
// now: they leave this process's resident set and are read again from the file if touched. Keeps
// the resident size of a streaming pass over a large mapping small.
void ReleaseMappedPages(const void* p, size_t n);

// Reads a whole regular file the user named. A file of more than `max_bytes` is refused from its
// size, before it is read: "PATH: N bytes; WHAT may have at most MAX".
Status ReadFileToString(const std::string& path, std::string* out, uint64_t max_bytes = UINT64_MAX,
                        const std::string& what = "the file");
// Creates or replaces `path` (never through a link) with `data` (tests write their fixtures with it).
Status WriteStringToFile(const std::string& path, const std::string& data);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// Removes a file or folder tree; missing paths are not an error.
void RemoveTree(const std::string& path);

// "a/b/c.txt" -> "a/b"; "c.txt" -> "".
std::string Dirname(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);

}  // namespace palettize
