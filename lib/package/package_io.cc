#include "palettize/package_io.h"

#include "package/package.h"
#include "util/guard.h"
#include "util/path_rules.h"

namespace palettize {

Status RewritePackage(const std::string& in, const std::string& out, const RewriteOptions& options) {
  return Guarded(in, [&] {
    // As every command does, once, before anything is read: the writer itself does not check.
    RunPaths paths;
    paths.inputs = {{"the input", in}};
    paths.outputs = {{out, OutputKind::kPackage}};
    paths.overwrite = options.overwrite;
    PALETTIZE_RETURN_IF_ERROR(CheckRunPaths(paths));
    Package package;
    PALETTIZE_RETURN_IF_ERROR(package.Load(in));
    return package.Save(package.model(), out, options.overwrite);
  });
}

}  // namespace palettize
