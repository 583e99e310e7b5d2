#include "palettize/package_io.h"

#include "package/package.h"

namespace palettize {

Status RewritePackage(const std::string& in, const std::string& out, const RewriteOptions& options) {
  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(in));
  return package.Save(package.model(), out, options.overwrite);
}

}  // namespace palettize
