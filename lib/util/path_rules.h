// Path rules: where a run may write. Checked before any work, so that a refused run reads
// nothing and writes nothing (README "Path rules"):
//   - an output (a package, a checkpoint file, --output-dir) is not, does not hold, and does not
//     lie inside any input (the model, the --sensitivity file, the --config file);
//   - the report, and each other text the run writes (--emit-config, --plot), is not, and does not
//     lie inside, any input or output, nor is it another of them;
//   - an existing output is replaced only with --force, and only by one of its own kind: a
//     package replaces a package (a folder holding Manifest.json), a file a regular file; the
//     report replaces a regular file or is written into a special file (/dev/stdout, a pipe).
// Paths are compared as the kernel sees them: "." and ".." and symbolic links resolved, and by
// device and inode where they exist, so no spelling of a path gets around a rule.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "palettize/compress.h"
#include "palettize/status.h"

namespace palettize {

// `path` made absolute, with "." and ".." and symbolic links resolved through its longest
// existing prefix; the part that does not exist yet is appended with "." and ".." applied
// lexically. Trailing and repeated slashes are dropped.
std::string ResolvePath(const std::string& path);

// Whether `a` and `b` name the same file or folder (the same device and inode where both exist,
// else the same resolved path).
bool SamePath(const std::string& a, const std::string& b);

// Whether `a` lies strictly inside the folder `b`, at any depth.
bool PathInside(const std::string& a, const std::string& b);

enum class OutputKind {
  kPackage,  // replaced as a whole; an existing one must be a package
  kFile,     // a checkpoint; an existing one must be a regular file
  kFolder,   // --output-dir: written into, never replaced; an existing one must be a folder
};

struct WriteTarget {
  std::string path;  // as the user gave it: messages quote it
  OutputKind kind = OutputKind::kPackage;
};

struct RunPaths {
  // Read only. Each entry is a role ("the input", "the --sensitivity file") and a path; empty
  // paths are left out.
  std::vector<std::pair<std::string, std::string>> inputs;
  std::vector<WriteTarget> outputs;  // empty paths (a dry run without -o) are left out
  std::string report;                // "" = none
  // Files written like the report (replaced whole, or into a special file): a role ("the
  // emit_config_path file") and a path; empty paths are left out.
  std::vector<std::pair<std::string, std::string>> texts;
  bool overwrite = false;  // --force
  bool dry_run = false;    // an existing output is then not refused for lacking --force
};

// The first rule `paths` breaks, as InvalidArgument naming the paths as given (an IOError for
// a report whose folder does not exist, or an --output-dir that is a file); OK when none.
Status CheckRunPaths(const RunPaths& paths);

// CheckRunPaths for a run that reads one package and writes one (decompress, RewritePackage).
Status CheckPackageToPackage(const std::string& input, const std::string& output, bool overwrite);

// The paths of a compress run (of a package, a checkpoint, or one model of a batch): `input`,
// options.sensitivity_file and options.config_file are read, `output` and options.report_path
// written, and (texts) options.emit_config_path and options.plot_path; options.overwrite and
// options.dry_run as given.
RunPaths CompressRunPaths(const std::string& input, const WriteTarget& output,
                          const CompressOptions& options);

}  // namespace palettize
