#include "util/path_rules.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <unordered_map>

#include "palettize/option_names.h"
#include "util/already_exists.h"
#include "util/env.h"
#include "util/file.h"

namespace fs = std::filesystem;

namespace palettize {

namespace {

// A file or folder as the kernel sees it: "device:inode" where it exists, else its resolved path
// (nothing that exists can be it, so the path alone identifies it).
std::string Key(const std::string& resolved) {
  struct stat st;
  if (Env::Current()->Stat(resolved, &st) == 0)
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  return resolved;
}

// The keys of `path` and of every folder above it, innermost first. Comparing the outer keys
// with another path's own key answers "inside" by inode too (a bind mount has two spellings of
// one folder).
std::vector<std::string> Chain(const std::string& path) {
  std::vector<std::string> chain;
  for (fs::path p = ResolvePath(path);; p = p.parent_path()) {
    chain.push_back(Key(p.string()));
    if (p == p.parent_path()) break;
  }
  return chain;
}

// A path as given, with its chain and its role in messages.
struct Named {
  std::string given;
  std::string role;  // "the input", "the output", "the report", the output folder's option name
  std::vector<std::string> chain;
  OutputKind kind = OutputKind::kFile;  // for outputs
};

Named Name(const std::string& given, std::string role, OutputKind kind = OutputKind::kFile) {
  return {given, std::move(role), Chain(given), kind};
}

// Paths by key, so that a batch of n models is checked in O(n) lookups, not n^2 comparisons:
// each path's own key, and the keys of the folders above it (the first path of a key wins).
struct Index {
  std::unordered_map<std::string, const Named*> self, above;
  explicit Index(const std::vector<Named>& paths) {
    for (const Named& n : paths) {
      self.emplace(n.chain[0], &n);
      for (size_t i = 1; i < n.chain.size(); ++i) above.emplace(n.chain[i], &n);
    }
  }
};

// Refuses `w` (an output or the report) where it is one of `others` or lies inside one, or,
// when `w` is replaced as a whole (`holds_matters`), where it holds one. Lying inside
// --output-dir is what outputs and a batch report do.
Status CheckApart(const Named& w, const Index& others, bool holds_matters) {
  const std::string head = w.given + ": " + w.role;
  auto it = others.self.find(w.chain[0]);
  if (it != others.self.end()) {
    const Named& o = *it->second;
    return Status::InvalidArgument(head + " is " + o.role + (o.given == w.given ? "" : " " + o.given) +
                                   "; write to another path");
  }
  for (size_t i = 1; i < w.chain.size(); ++i) {
    it = others.self.find(w.chain[i]);
    if (it != others.self.end() && it->second->kind != OutputKind::kFolder)
      return Status::InvalidArgument(head + " lies inside " + it->second->role + " " + it->second->given +
                                     "; write outside it");
  }
  it = others.above.find(w.chain[0]);
  if (holds_matters && it != others.above.end()) {
    const Named& o = *it->second;
    return Status::InvalidArgument(
        w.kind == OutputKind::kFolder
            ? head + " holds " + o.role + " " + o.given + "; write to another folder"
            : head + " would replace the folder holding " + o.role + " " + o.given);
  }
  return Status::OK();
}

// An existing output: only one of its own kind is replaced, and only with --force.
Status CheckExisting(const Named& out, const RunPaths& paths) {
  Env* env = Env::Current();
  struct stat st, manifest;
  if (env->Lstat(out.given, &st) != 0) return Status::OK();
  if (env->Stat(out.given, &st) != 0) st.st_mode = 0;  // a dangling link is of no kind
  switch (out.kind) {
    case OutputKind::kFolder:
      if (!S_ISDIR(st.st_mode)) return Status::IOError(out.given + ": not a folder");
      return Status::OK();
    case OutputKind::kPackage:
      if (!S_ISDIR(st.st_mode) ||
          env->Stat((fs::path(out.given) / "Manifest.json").string(), &manifest) != 0 ||
          !S_ISREG(manifest.st_mode))
        return Status::InvalidArgument(
            out.given + ": already exists and is not a package (a folder holding Manifest.json); " +
            GetOptionNames().overwrite + " replaces only a package");
      break;
    case OutputKind::kFile:
      if (!S_ISREG(st.st_mode))
        return Status::InvalidArgument(out.given + ": already exists and is not a regular file; " +
                                       GetOptionNames().overwrite + " replaces only a file");
      break;
  }
  if (!paths.overwrite && !paths.dry_run) return AlreadyExists(out.given);
  return Status::OK();
}

// The report (or another text) replaces a regular file, or is written into a special file in
// place; never a folder.
Status CheckReportTarget(const std::string& report, const std::string& role = "the report",
                         const std::string& what = "cannot write report") {
  if (IsDirectory(report)) return Status::InvalidArgument(report + ": " + role + " is a folder; name a file");
  const fs::path folder = fs::path(report).parent_path();
  if (!folder.empty() && !IsDirectory(folder.string()))
    return Status::IOError(report + ": " + what + ": no folder " + folder.string());
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
      std::string next;
      if (Env::Current()->RealPath((done / part).string(), &next)) {
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

bool SamePath(const std::string& a, const std::string& b) { return Chain(a)[0] == Chain(b)[0]; }

bool PathInside(const std::string& a, const std::string& b) {
  const std::vector<std::string> chain = Chain(a);
  return std::find(chain.begin() + 1, chain.end(), Chain(b)[0]) != chain.end();
}

Status CheckRunPaths(const RunPaths& paths) {
  std::vector<Named> inputs, outputs;
  for (const auto& [role, path] : paths.inputs)
    if (!path.empty()) inputs.push_back(Name(path, role));
  for (const WriteTarget& o : paths.outputs)
    if (!o.path.empty())
      outputs.push_back(
          Name(o.path, o.kind == OutputKind::kFolder ? GetOptionNames().output_dir : "the output", o.kind));

  const Index input_index(inputs);
  for (const Named& out : outputs) {
    PALETTIZE_RETURN_IF_ERROR(CheckApart(out, input_index, true));
    PALETTIZE_RETURN_IF_ERROR(CheckExisting(out, paths));
  }
  // The report, then the other texts: each apart from the inputs, the outputs and the texts
  // before it.
  std::vector<Named> texts;
  if (!paths.report.empty()) texts.push_back(Name(paths.report, "the report"));
  for (const auto& [role, path] : paths.texts)
    if (!path.empty()) texts.push_back(Name(path, role));
  const Index output_index(outputs);
  for (size_t i = 0; i < texts.size(); ++i) {
    PALETTIZE_RETURN_IF_ERROR(CheckApart(texts[i], input_index, false));
    PALETTIZE_RETURN_IF_ERROR(CheckApart(texts[i], output_index, false));
    const std::vector<Named> before(texts.begin(), texts.begin() + std::ptrdiff_t(i));
    PALETTIZE_RETURN_IF_ERROR(CheckApart(texts[i], Index(before), false));
    PALETTIZE_RETURN_IF_ERROR(
        CheckReportTarget(texts[i].given, texts[i].role,
                          i == 0 && !paths.report.empty() ? "cannot write report" : "cannot write"));
  }
  return Status::OK();
}

RunPaths CompressRunPaths(const std::string& input, const WriteTarget& output,
                          const CompressOptions& options) {
  RunPaths r;
  r.inputs = {{"the input", input},
              {"the " + GetOptionNames().sensitivity + " file", options.sensitivity_file},
              {"the " + GetOptionNames().config + " file", options.config_file}};
  r.outputs = {output};
  r.report = options.report_path;
  r.texts = {{"the " + GetOptionNames().emit_config + " file", options.emit_config_path},
             {"the " + GetOptionNames().plot + " file", options.plot_path},
             {"the " + GetOptionNames().costs_out + " file", options.costs_out}};
  r.overwrite = options.overwrite;
  r.dry_run = options.dry_run;
  return r;
}

Status CheckPackageToPackage(const std::string& input, const std::string& output, bool overwrite) {
  RunPaths paths;
  paths.inputs = {{"the input", input}};
  paths.outputs = {{output, OutputKind::kPackage}};
  paths.overwrite = overwrite;
  return CheckRunPaths(paths);
}

}  // namespace palettize
