// The one wording of an output that is already there when the caller did not ask to replace it.
#pragma once

#include <string>

#include "palettize/status.h"

namespace palettize {

// InvalidArgument "PATH: already exists (use NAME to replace it)", NAME the overwrite option's name
// (palettize/option_names.h).
Status AlreadyExists(const std::string& path);

}  // namespace palettize
