// The paths this process is assembling (staged outputs, and previous outputs swapped out by a
// commit and not yet removed), so that SIGINT, SIGTERM or SIGHUP can remove them before the
// process exits (palettize/signals.h). Thread-safe.
#pragma once

#include <mutex>
#include <string>

namespace palettize {

void RegisterStaged(const std::string& path);
void UnregisterStaged(const std::string& path);

// A folder this run created to hold outputs (a batch's OUT/ and its sub-folders): on a signal it
// is removed if it is empty by then (rmdir, newest first), so a committed output always stays.
void RegisterCreatedFolder(const std::string& path);

// Held (recursive) while staged outputs are renamed into place (or back): a signal is handled before a commit
// or after it, never between two of its renames.
std::unique_lock<std::recursive_mutex> LockStaged();

// With the lock held (the signal thread): moves each registered path aside, removes it, and
// removes it again at its own name in case a writer recreated a folder on the way there.
void RemoveAllStagedLocked();

}  // namespace palettize
