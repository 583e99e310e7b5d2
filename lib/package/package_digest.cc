#include "package/package_digest.h"

#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "util/digest.h"
#include "util/env.h"
#include "util/file.h"

namespace palettize {

namespace {

// Adds `rel` (below the package) to `d`: its name, size and bytes, 64 MiB at a time.
Status AddFile(const Package& package, const std::string& rel, Digest* d) {
  MappedFile file;
  PALETTIZE_RETURN_IF_ERROR(file.OpenUnder(package.path(), rel));
  d->Update(rel).Update(uint64_t(file.size()));
  constexpr size_t kChunk = size_t(64) << 20;
  for (size_t at = 0; at < file.size(); at += kChunk) {
    const size_t n = std::min(kChunk, file.size() - at);
    d->Update(file.data() + at, n);
    ReleaseMappedPages(file.data() + at, n);
  }
  return Status::OK();
}

}  // namespace

Status PackageDigest(const Package& package, std::string* hex) {
  const std::string model_rel = package.model_path().substr(package.path().size() + 1);
  Digest d;
  PALETTIZE_RETURN_IF_ERROR(AddFile(package, model_rel, &d));
  const std::string weights_rel = JoinPath(Dirname(model_rel), "weights");
  std::vector<std::string> names;
  // No weights folder: a program of immediate values only.
  if (Env::Current()->ListFolder(JoinPath(package.path(), weights_rel), &names) == 0) {
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      const std::string rel = JoinPath(weights_rel, name);
      struct stat st;
      if (Env::Current()->Lstat(JoinPath(package.path(), rel), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      PALETTIZE_RETURN_IF_ERROR(AddFile(package, rel, &d));
    }
  }
  *hex = d.Hex();
  return Status::OK();
}

}  // namespace palettize
