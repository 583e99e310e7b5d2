#include "util/staged_registry.h"

#include <unistd.h>

#include <set>
#include <vector>

#include "util/env.h"
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

std::unique_lock<std::recursive_mutex> LockStaged() {
  return std::unique_lock<std::recursive_mutex>(Mutex());
}

void RemoveAllStagedLocked() {
  Env* env = Env::Current();
  for (const std::string& path : Paths()) {
    // Renamed first: a writer still creating files by path now fails instead of adding to the
    // tree while it is being removed. The suffix cannot clash: the staged name is random. A
    // create already under way when the rename happened can still land in the tree after the
    // removal listed its folder, so the removal is repeated until nothing is left (a few
    // milliseconds at most: no new create can reach the renamed tree).
    const std::string aside = path + "-removing";
    const bool renamed = env->Rename(path, aside) == 0;
    for (int attempt = 0; attempt < 100; ++attempt) {
      if (renamed) RemoveTree(aside);
      RemoveTree(path);
      if (!PathExists(aside) && !PathExists(path)) break;
      ::usleep(2000);
    }
  }
  Paths().clear();
  for (auto it = Folders().rbegin(); it != Folders().rend(); ++it) env->RemoveFolder(*it);
}

}  // namespace palettize
