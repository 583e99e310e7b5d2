// The names library messages give the caller's options (palettize/option_names.h).
#include "palettize/option_names.h"
#include "util/already_exists.h"

namespace palettize {
namespace {

OptionNames& Installed() {
  static OptionNames names;
  return names;
}

}  // namespace

void SetOptionNames(const OptionNames& names) { Installed() = names; }

const OptionNames& GetOptionNames() { return Installed(); }

Status AlreadyExists(const std::string& path) {
  return Status::InvalidArgument(path + ": already exists (use " + GetOptionNames().overwrite +
                                 " to replace it)");
}

}  // namespace palettize
