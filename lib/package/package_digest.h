// The identity of a package's model for the costs files of a sharded measured sweep
// (alloc/costs_file.h): what its outputs depend on, the root model's bytes and its weight files'.
#pragma once

#include <string>

#include "package/package.h"
#include "palettize/status.h"

namespace palettize {

// util/digest.h over the root model file (model.mlmodel) and then each regular file of the
// weights/ folder beside it, in name order, each preceded by its name and size. Manifest.json and
// other items are left out: they do not change what the program computes. Reads every weight file
// once, through a mapping whose pages are let go as it goes.
Status PackageDigest(const Package& package, std::string* hex);

}  // namespace palettize
