// Outputs are written beside their targets and renamed into place together, once all of them are
// complete ("write beside, then rename"): a reader, or a run that fails or is interrupted, sees
// every previous file as it was or every new one, never a mix and never half a file.
//
//   DIR/OUT                    the target (a package folder, a .safetensors file, a report)
//   DIR/OUT.partial-XXXXXX     where it is assembled: mkdtemp/mkostemp in the target's folder,
//                              six random characters, created exclusively (a link planted at
//                              any name is never followed); removed unless committed
//
// Modes: folders 0755 and files 0644, less the process's umask; never setuid, setgid or sticky
// (a folder inside a setgid folder would inherit the bit: it is cleared).
//
// A target that exists and is neither a regular file nor a folder (a FIFO, /dev/full), or that
// names one of this process's descriptors (/dev/stdout, /dev/fd/N, /proc/self/fd/N, even when
// redirected to a regular file), is written in place: renaming over it would replace the device,
// pipe or link itself. It has nothing to commit, so it is written before the others are.
#pragma once

#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

class StagedOutput {
 public:
  enum class Kind { kFile, kFolder };

  StagedOutput() = default;
  ~StagedOutput();  // removes what was staged unless it was committed
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;

  // Creates the temporary beside `target` (a file: open for writing, fd()). `overwrite`: the
  // commit may replace an existing target of the same kind. Errors name `target`:
  // "OUT: cannot create folder: Read-only file system".
  // `what` replaces "cannot create" / "cannot create folder" / "cannot write" in errors.
  Status Begin(const std::string& target, Kind kind, bool overwrite, const char* what = nullptr);

  // Files: flushes to disk and closes. Must succeed before the commit.
  Status Close();

  bool active() const { return !path_.empty(); }
  bool in_place() const { return in_place_; }
  const std::string& target() const { return target_; }
  const std::string& path() const { return path_; }  // where to write now
  int fd() const { return fd_; }

 private:
  friend Status CommitStaged(const std::vector<StagedOutput*>& outputs);
  enum class Placed { kNo, kNew, kExchanged, kAside };
  Status Place();
  Status PlaceWithoutRenameat2();
  void Undo();
  void Discard();

  Status Failed(const char* what) const;

  std::string target_, path_, old_;  // old_: the previous target once it is swapped out
  const char* what_ = nullptr;
  Kind kind_ = Kind::kFile;
  bool overwrite_ = false;
  bool in_place_ = false;
  int fd_ = -1;
  Placed placed_ = Placed::kNo;
};

// Renames every active, staged output into place: onto a missing target without replacing one
// that appears meanwhile (renameat2 RENAME_NOREPLACE; without `overwrite` that is the error
// AlreadyExists(OUT), util/already_exists.h), over an existing one by exchanging the two
// (RENAME_EXCHANGE), so that concurrent runs on one target each replace it whole and the last
// wins. If any rename fails, the ones done are undone, so every previous target is as it was.
// Once all are in place, the previous targets are removed. Where the file system has no
// renameat2, the previous target is first moved aside (OUT.old-XXXXXX).
Status CommitStaged(const std::vector<StagedOutput*>& outputs);

// Stages `text` as the new contents of `target` (a report, an emitted config, a plot), written
// and closed; in place for a special file. Errors: "REPORT: cannot write report: <reason>", with
// `what` in place of "cannot write report".
Status StageText(const std::string& target, const std::string& text, StagedOutput* out,
                 const char* what = "cannot write report");

// Creates folder `path` (its parent must exist), 0755 less the umask; one that exists (not a
// link) is no error. Errors: "PATH: cannot create folder: <reason>".
Status MakeFolder(const std::string& path);

// Creates the missing folders of `root`/`rel` (`root` must exist: a folder removed under a
// writer is not silently recreated), each 0755 less the umask.
Status MakeFolders(const std::string& root, const std::string& rel);

// Creates a new file exclusively (never through a link), 0644 less the umask, writes `data` and
// syncs it (it is part of an output about to be committed).
Status WriteNewFile(const std::string& path, const std::string& data);

// Opens a new file exclusively for writing (O_EXCL|O_NOFOLLOW), 0644 less the umask; -1 and
// errno on failure.
int CreateNewFile(const std::string& path);

// The process's umask, read once (from /proc/self/status; else by setting and restoring it,
// which palettize/signals.h's start-up call does before any thread exists).
unsigned ProcessUmask();

// Tests: behave as on a file system without renameat2 (the portable commit).
void DisableRenameat2ForTesting(bool disable);

}  // namespace palettize
