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

  Status Open(const std::string& path);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Tells the kernel the pages wholly inside [p, p+n) of a read-only file mapping are not needed
// now: they leave this process's resident set and are read again from the file if touched. Keeps
// the resident size of a streaming pass over a large mapping small.
void ReleaseMappedPages(const void* p, size_t n);

Status ReadFileToString(const std::string& path, std::string* out);
Status WriteStringToFile(const std::string& path, const std::string& data);

bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);

// Copies a file or a folder tree from `from` to `to` (parents created as needed).
Status CopyTree(const std::string& from, const std::string& to);

// Removes a file or folder tree; missing paths are not an error.
void RemoveTree(const std::string& path);

// "a/b/c.txt" -> "a/b"; "c.txt" -> "".
std::string Dirname(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);

}  // namespace palettize
