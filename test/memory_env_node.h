// The nodes and descriptors of the in-memory Env (memory_env.h), shared by its two files.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "memory_env.h"

namespace palettize {

struct MemoryEnv::Node {
  Kind kind = Kind::kFile;
  mode_t perm = 0;
  uint64_t ino = 0;
  nlink_t links = 1;                      // names of a non-folder (0 once removed while open)
  std::string data;                       // a file's bytes; a link's target
  std::string synced;                     // a file's bytes at its last Sync: what a crash keeps
  std::map<std::string, NodeP> children;  // a folder's entries
  std::weak_ptr<Node> parent;             // a folder's (the root's is itself)
  std::string name;                       // a folder's name in its parent
};

struct MemoryEnv::Descriptor {
  NodeP node;
  off_t offset = 0;
  int flags = 0;
  bool written = false;
};

// "a//b/c/" -> {"a", "b", "c"}.
inline std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

}  // namespace palettize
