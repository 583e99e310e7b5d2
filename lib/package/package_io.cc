#include "palettize/package_io.h"

#include "package/package.h"
#include "util/guard.h"

namespace palettize {

Status RewritePackage(const std::string& in, const std::string& out, const RewriteOptions& options) {
  return Guarded(in, [&] {
    Package package;
    PALETTIZE_RETURN_IF_ERROR(package.Load(in));
    return package.Save(package.model(), out, options.overwrite);
  });
}

}  // namespace palettize
