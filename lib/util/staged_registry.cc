#include "util/staged_registry.h"

#include <unistd.h>

#include <cstdio>
#include <set>
#include <vector>

#include "util/file.h"

namespace palettize {

namespace {

std::recursive_mutex& Mutex() {
  static std::recursive_mutex mu;
  return mu;
}

std::set<std::string>& Paths() {
  static std::set<std::string> paths;
  return paths;
}

std::vector<std::string>& Folders() {
  static std::vector<std::string> folders;
  return folders;
}

}  // namespace

void RegisterCreatedFolder(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(Mutex());
  Folders().push_back(path);
}

void RegisterStaged(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(Mutex());
  Paths().insert(path);
}

void UnregisterStaged(const std::string& path) {
  std::lock_guard<std::recursive_mutex> lock(Mutex());
  Paths().erase(path);
}

std::unique_lock<std::recursive_mutex> LockStaged() { return std::unique_lock<std::recursive_mutex>(Mutex()); }

void RemoveAllStagedLocked() {
  for (const std::string& path : Paths()) {
    // Renamed first: a writer still creating files by path now fails instead of adding to the
    // tree while it is being removed. The suffix cannot clash: the staged name is random.
    const std::string aside = path + "-removing";
    if (std::rename(path.c_str(), aside.c_str()) == 0) RemoveTree(aside);
    RemoveTree(path);
  }
  Paths().clear();
  for (auto it = Folders().rbegin(); it != Folders().rend(); ++it) ::rmdir(it->c_str());
}

}  // namespace palettize
