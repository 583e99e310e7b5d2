// Reading inputs safely: what the user names (a config, a checkpoint, a sensitivity file) and what
// a package holds. Three rules (README "What palettize reads"):
//   - Only regular files are read. A FIFO, device or socket is refused from its lstat/stat,
//     never opened for reading; a regular file is opened with O_NONBLOCK (so a FIFO swapped in
//     after the stat cannot block the open) and checked again with fstat.
//   - Below a package root no symbolic link is followed or copied. Every path component is
//     opened relative to its parent folder with O_NOFOLLOW, so a linked parent folder is caught
//     as well as a linked file. The root itself may be a link: naming it is the user's choice.
//   - Whole-file reads are bounded: a file larger than its limit is refused from its size,
//     before a byte is read, and a file that grows while read stops at the limit.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>

#include "palettize/status.h"

namespace palettize {

// Owns a file descriptor; closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Opens a file the user named (links followed) for reading. Anything but a regular file is an
// IOError naming what it is ("c.yaml: is a folder, expected a file", "x: is a FIFO, not a
// regular file") and is not opened.
Status OpenRegularFile(const std::string& path, UniqueFd* fd, struct stat* st);

// Opens `rel` ("Data/com.apple.CoreML/model.mlmodel", components separated by '/'; "" is the
// root) below the folder `root`, following no link below `root`. A link or a special file on the
// way is InvalidInput naming it; ".." is refused; a missing component is an IOError. The result
// is a regular file or a folder (see st->st_mode).
Status OpenUnder(const std::string& root, const std::string& rel, UniqueFd* fd, struct stat* st);

// Reads the rest of `fd` into `out`. A file of more than `max_bytes` is InvalidInput:
// "PATH: 2097152 bytes; a Manifest.json may have at most 1048576 (1 MiB)", where `what` is
// "a Manifest.json".
Status ReadAll(int fd, const struct stat& st, const std::string& path, uint64_t max_bytes,
               const std::string& what, std::string* out);

// One entry met by WalkUnder: a regular file or a folder.
struct TreeEntry {
  std::string rel;     // below the walk's root: "Data/com.apple.CoreML/weights/weight.bin"
  std::string shown;   // root + "/" + rel, for messages
  int parent_fd = -1;  // the open folder holding it: open the entry with openat(parent_fd, name)
  std::string name;
  struct stat st;
};

// Visits `rel` below `root` and, if it is a folder, everything below it: sorted by name, a
// folder before its contents. A symbolic link, FIFO, device or socket anywhere stops the walk
// with InvalidInput naming it, before it is visited. Folders nested more than kMaxTreeDepth deep
// are refused too (each level holds a descriptor).
inline constexpr int kMaxTreeDepth = 64;
Status WalkUnder(const std::string& root, const std::string& rel,
                 const std::function<Status(const TreeEntry&)>& visit);

// Copies `rel` below `root` (a file or a folder tree) to `to`, whose parent must exist. Only
// regular files and folders exist by WalkUnder; links are neither followed nor copied. Modes are
// not copied: files are created 0666 and folders 0777 less the umask (0644 and 0755 with the
// usual 022), as every file palettize writes, so no setuid, setgid or sticky bit comes through.
// Entries whose `shown` path `skip` returns true for are left out. Each file copied is synced:
// the copy is part of an output about to be committed.
Status CopyUnder(const std::string& root, const std::string& rel, const std::string& to,
                 const std::function<bool(const std::string& shown)>& skip);

}  // namespace palettize
