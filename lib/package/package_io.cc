#include "palettize/package_io.h"

#include "package/package.h"
#include "util/guard.h"
#include "util/path_rules.h"

namespace palettize {

Status RewritePackage(const std::string& in, const std::string& out, const RewriteOptions& options) {
  return Guarded(in, [&] {
    // As every command does, once, before anything is read: the writer itself does not check.
    PALETTIZE_RETURN_IF_ERROR(CheckPackageToPackage(in, out, options.overwrite));
    Package package;
    PALETTIZE_RETURN_IF_ERROR(package.Load(in));
    return package.Save(package.model(), out, options.overwrite);
  });
}

}  // namespace palettize
