#include "util/path_rules.h"

#include <sys/stat.h>

#include <filesystem>
#include <system_error>

namespace fs = std::filesystem;

namespace palettize {

namespace {

// One folder or file on the path from a resolved path up to the root. Two nodes are the same
// when they have the same device and inode; a node that does not exist yet has only its
// resolved path to compare (nothing else can be it).
struct Node {
  std::string resolved;
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
};

bool SameNode(const Node& a, const Node& b) {
  if (a.exists && b.exists) return a.dev == b.dev && a.ino == b.ino;
  return a.resolved == b.resolved;
}

// `path` and every folder above it, innermost first. Comparing the outer nodes with another
// path's own node answers "inside" by inode too (a bind mount has two spellings of one folder).
std::vector<Node> Chain(const std::string& path) {
  std::vector<Node> chain;
  for (fs::path p = ResolvePath(path);; p = p.parent_path()) {
    Node n;
    n.resolved = p.string();
    struct stat st;
    if (::stat(n.resolved.c_str(), &st) == 0) n.exists = true, n.dev = st.st_dev, n.ino = st.st_ino;
    chain.push_back(std::move(n));
    if (p == p.parent_path()) break;
  }
  return chain;
}

bool Inside(const std::vector<Node>& a, const std::vector<Node>& b) {
  for (size_t i = 1; i < a.size(); ++i)
    if (SameNode(a[i], b[0])) return true;
  return false;
}

// A path as given, with its resolved chain and its role in messages.
struct Named {
  std::string given;
  std::string role;  // "the input", "the output", "the report", "--output-dir"
  std::vector<Node> chain;
  OutputKind kind = OutputKind::kFile;  // for outputs
};

Named Name(const std::string& given, std::string role, OutputKind kind = OutputKind::kFile) {
  return {given, std::move(role), Chain(given), kind};
}

// Refuses `w` (an output or the report) where it is `other` or lies inside it, or (when `w`
// is replaced as a whole, `holds_matters`) where it holds it.
Status CheckApart(const Named& w, const Named& other, bool holds_matters) {
  const std::string head = w.given + ": " + w.role;
  if (SameNode(w.chain[0], other.chain[0]))
    return Status::InvalidArgument(head + " is " + other.role + (other.given == w.given ? "" : " " + other.given) +
                                   "; write to another path");
  if (Inside(w.chain, other.chain))
    return Status::InvalidArgument(head + " lies inside " + other.role + " " + other.given + "; write outside it");
  if (holds_matters && Inside(other.chain, w.chain))
    return Status::InvalidArgument(w.kind == OutputKind::kFolder
                                       ? head + " holds " + other.role + " " + other.given + "; write to another folder"
                                       : head + " would replace the folder holding " + other.role + " " + other.given);
  return Status::OK();
}

// An existing output: only one of its own kind is replaced, and only with --force.
Status CheckExisting(const Named& out, const RunPaths& paths) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(out.given, ec))) return Status::OK();
  const fs::file_status st = fs::status(out.given, ec);  // a dangling link is of no kind
  switch (out.kind) {
    case OutputKind::kFolder:
      if (!fs::is_directory(st)) return Status::IOError(out.given + ": not a folder");
      return Status::OK();
    case OutputKind::kPackage:
      if (!fs::is_directory(st) || !fs::is_regular_file(fs::path(out.given) / "Manifest.json", ec))
        return Status::InvalidArgument(out.given +
                                       ": already exists and is not a package (a folder holding Manifest.json); "
                                       "--force replaces only a package");
      break;
    case OutputKind::kFile:
      if (!fs::is_regular_file(st))
        return Status::InvalidArgument(out.given +
                                       ": already exists and is not a regular file; --force replaces only a file");
      break;
  }
  if (!paths.overwrite && !paths.dry_run)
    return Status::InvalidArgument(out.given + ": already exists (use --force to replace it)");
  return Status::OK();
}

// The report replaces a regular file, or is written into a special file in place; never a folder.
Status CheckReportTarget(const std::string& report) {
  std::error_code ec;
  if (fs::is_directory(report, ec)) return Status::InvalidArgument(report + ": the report is a folder; name a file");
  const fs::path folder = fs::path(report).parent_path();
  if (!folder.empty() && !fs::is_directory(folder, ec))
    return Status::IOError(report + ": cannot write report: no folder " + folder.string());
  return Status::OK();
}

}  // namespace

std::string ResolvePath(const std::string& path) {
  std::error_code ec;
  const fs::path abs = fs::absolute(path, ec);
  fs::path done = abs.root_path(), rest;
  bool existing = true;
  for (const fs::path& part : abs.relative_path()) {
    if (part.empty()) continue;  // a trailing slash
    if (existing) {
      fs::path next = fs::canonical(done / part, ec);
      if (!ec) {
        done = std::move(next);
        continue;
      }
      existing = false;
    }
    rest /= part;
  }
  std::string out = rest.empty() ? done.string() : (done / rest).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

bool SamePath(const std::string& a, const std::string& b) { return SameNode(Chain(a)[0], Chain(b)[0]); }

bool PathInside(const std::string& a, const std::string& b) { return Inside(Chain(a), Chain(b)); }

Status CheckRunPaths(const RunPaths& paths) {
  std::vector<Named> inputs, outputs;
  for (const auto& [role, path] : paths.inputs)
    if (!path.empty()) inputs.push_back(Name(path, role));
  for (const WriteTarget& o : paths.outputs)
    if (!o.path.empty())
      outputs.push_back(Name(o.path, o.kind == OutputKind::kFolder ? "--output-dir" : "the output", o.kind));

  for (const Named& out : outputs) {
    for (const Named& in : inputs) PALETTIZE_RETURN_IF_ERROR(CheckApart(out, in, true));
    PALETTIZE_RETURN_IF_ERROR(CheckExisting(out, paths));
  }
  if (paths.report.empty()) return Status::OK();
  const Named report = Name(paths.report, "the report");
  for (const Named& in : inputs) PALETTIZE_RETURN_IF_ERROR(CheckApart(report, in, false));
  for (const Named& out : outputs) {
    // --output-dir is a folder the report may go into; an output is not.
    if (out.kind == OutputKind::kFolder && !SameNode(report.chain[0], out.chain[0])) continue;
    PALETTIZE_RETURN_IF_ERROR(CheckApart(report, out, false));
  }
  return CheckReportTarget(paths.report);
}

RunPaths CompressRunPaths(const std::string& input, const WriteTarget& output, const CompressOptions& options) {
  RunPaths r;
  r.inputs = {{"the input", input},
              {"the --sensitivity file", options.sensitivity_file},
              {"the --config file", options.config_file}};
  r.outputs = {output};
  r.report = options.report_path;
  r.overwrite = options.overwrite;
  r.dry_run = options.dry_run;
  return r;
}

}  // namespace palettize
