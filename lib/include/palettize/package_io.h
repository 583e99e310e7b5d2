// Package round trip: the read/write path every command that writes a package goes through.
#pragma once

#include <string>

#include "palettize/status.h"

namespace palettize {

struct RewriteOptions {
  bool overwrite = false;  // replace an existing output (never the input itself)
};

// Loads the package at `in` and writes it unchanged to `out`: the same model, every weight
// bit-identical in a freshly written weight.bin, every other manifest item copied through.
Status RewritePackage(const std::string& in, const std::string& out, const RewriteOptions& options);

}  // namespace palettize
