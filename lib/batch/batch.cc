// Batch: which packages the arguments name and where each one's output goes (PlanBatch), then
// one Compress per package on `jobs` threads (CompressBatch).
#include "palettize/batch.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <thread>

#include "util/env.h"
#include "util/file.h"
#include "util/guard.h"
#include "util/path_rules.h"
#include "util/staged_registry.h"
#include "util/staging.h"

namespace palettize {

namespace fs = std::filesystem;

namespace {

bool HasPackageName(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".mlpackage";
}

// "zoo/a.mlpackage/" -> "zoo/a.mlpackage", so that filename() is the package's name. Otherwise
// the path is kept as the user spelled it: messages and the report quote it.
fs::path Clean(const std::string& arg) {
  fs::path p(arg);
  while (p.has_relative_path() && p.filename().empty()) p = p.parent_path();
  return p;
}

// The folders below `dir` (`rel` below the search's root) that hold packages: see FindPackages.
// false, with errno, when a folder cannot be listed.
bool SearchFolder(const fs::path& dir, const fs::path& rel, const std::string& out_identity,
                  std::vector<fs::path>* found) {
  Env* env = Env::Current();
  std::vector<std::string> names;
  if (env->ListFolder(dir.string(), &names) != 0) return false;
  for (const std::string& name : names) {
    const fs::path path = dir / name;
    struct stat st;
    // lstat: a link (or an entry that vanished) is passed over, never followed.
    if (env->Lstat(path.string(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (HasPackageName(path))
      found->push_back(rel / name);
    else if (ResolvePath(path.string()) != out_identity &&
             !SearchFolder(path, rel / name, out_identity, found))
      return false;
  }
  return true;
}

// The packages under `root`, as paths relative to it, sorted. Packages are not searched inside,
// nor is the output folder (a second run must not take the first run's outputs as inputs). A
// symbolic link is not followed out of the searched folders: a link to a package or to a folder is
// passed over (README; a linked package named on the command line is compressed).
Status FindPackages(const fs::path& root, const std::string& out_identity, std::vector<fs::path>* found) {
  if (!SearchFolder(root, fs::path(), out_identity, found))
    return Status::IOError(root.string() + ": cannot search folder: " + std::strerror(errno));
  std::sort(found->begin(), found->end());
  return Status::OK();
}

// Creates the missing folders of `dir`, outermost first, appending each to `created`.
Status MakeFolders(const fs::path& dir, std::vector<fs::path>* created) {
  fs::path p;
  for (const fs::path& part : dir) {
    p /= part;
    if (IsDirectory(p.string())) continue;
    PALETTIZE_RETURN_IF_ERROR(MakeFolder(p.string()));  // 0755 less the umask
    created->push_back(p);
    RegisterCreatedFolder(p.string());  // a signal removes it if it is still empty
  }
  return Status::OK();
}

}  // namespace

static Status PlanBatchUnguarded(const std::vector<std::string>& inputs, const std::string& out_dir,
                                 const CompressOptions& options, std::vector<BatchItem>* items) {
  items->clear();
  const fs::path out = Clean(out_dir);
  // Every input and output of the run, checked together before anything is compressed.
  RunPaths paths = CompressRunPaths("", {out_dir, OutputKind::kFolder}, options);
  const std::string out_identity = ResolvePath(out.string());
  std::set<std::string> seen;                   // inputs, resolved
  std::map<std::string, std::string> producer;  // output -> the input writing it
  auto add = [&](const fs::path& input, const fs::path& rel) -> Status {
    if (!seen.insert(ResolvePath(input.string())).second) return Status::OK();
    const fs::path output = out / rel;
    auto [it, fresh] = producer.emplace(output.string(), input.string());
    if (!fresh)
      return Status::InvalidArgument(
          output.string() + ": output of both " + it->second + " and " + input.string() +
          " (rename one, or pass the folder holding both: sub-folders are mirrored)");
    items->push_back({input.string(), output.string()});
    paths.inputs.push_back({"the input", input.string()});
    paths.outputs.push_back({output.string(), OutputKind::kPackage});
    return Status::OK();
  };
  Env* env = Env::Current();
  for (const std::string& arg : inputs) {
    const fs::path p = Clean(arg);
    struct stat st, manifest;
    if (env->Stat(p.string(), &st) != 0) return Status::IOError(arg + ": no such package or folder");
    if (HasPackageName(p) || env->Stat((p / "Manifest.json").string(), &manifest) == 0) {
      PALETTIZE_RETURN_IF_ERROR(add(p, p.filename()));
      continue;
    }
    if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(arg + ": not an .mlpackage or a folder");
    std::vector<fs::path> found;
    PALETTIZE_RETURN_IF_ERROR(FindPackages(p, out_identity, &found));
    if (found.empty()) return Status::InvalidArgument(arg + ": no .mlpackage in this folder");
    for (const fs::path& rel : found) PALETTIZE_RETURN_IF_ERROR(add(p / rel, rel));
  }
  return CheckRunPaths(paths);
}

Status PlanBatch(const std::vector<std::string>& inputs, const std::string& out_dir,
                 const CompressOptions& options, std::vector<BatchItem>* items) {
  return Guarded(out_dir, [&] { return PlanBatchUnguarded(inputs, out_dir, options, items); });
}

void CompressBatch(const std::vector<BatchItem>& items, const BatchOptions& options, BatchReport* report) {
  const auto start = std::chrono::steady_clock::now();
  BatchReport rep;
  rep.models.resize(items.size());
  std::mutex mu;
  std::vector<fs::path> created;
  std::atomic<size_t> next{0};
  size_t done = 0;
  auto work = [&] {
    for (size_t i; (i = next++) < items.size();) {
      BatchResult& r = rep.models[i];
      r.item = items[i];
      CompressOptions o = options.compress;
      o.progress = nullptr;
      o.report_path.clear();  // the batch's one report is written by WriteBatchReport
      if (!o.dry_run) {
        std::lock_guard<std::mutex> lock(mu);
        r.status = MakeFolders(fs::path(r.item.output).parent_path(), &created);
      }
      if (r.status.ok()) {
        try {
          r.status = Compress(r.item.input, r.item.output, o, &r.report);
        } catch (const std::bad_alloc&) {
          // One model too big for memory must not end the run for the others.
          r.status = Status::IOError(r.item.input + ": out of memory");
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      ++done;
      if (options.on_done) options.on_done(r, done, items.size());
    }
  };
  const size_t jobs = std::min(items.size(), size_t(std::max(options.jobs, 1)));
  if (jobs <= 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    for (size_t t = 0; t < jobs; ++t) threads.emplace_back(work);
    for (std::thread& t : threads) t.join();
  }
  // Folders made for models that failed are left empty: remove them, deepest first (a folder is
  // always created before the folders inside it).
  Env* env = Env::Current();
  for (auto it = created.rbegin(); it != created.rend(); ++it) {
    std::vector<std::string> names;
    if (env->ListFolder(it->string(), &names) == 0 && names.empty()) env->RemoveFolder(it->string());
  }
  for (const BatchResult& r : rep.models) {
    if (!r.status.ok()) {
      ++rep.failed;
      continue;
    }
    ++rep.ok;
    rep.bytes_before += r.report.bytes_before;
    rep.bytes_after += r.report.bytes_after;
  }
  rep.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  *report = std::move(rep);
}

}  // namespace palettize
