// Decompress: the inverse of compress. Every constexpr_lut_to_dense (iOS16 and iOS18 forms) and
// every constexpr_blockwise_shift_scale around it becomes a dense `const` again, with the output
// name and type of the last op of its chain, so consumers are unchanged.
#pragma once

#include <string>

#include "palettize/status.h"

namespace palettize {

struct DecompressOptions {
  bool overwrite = false;
};

struct DecompressReport {
  size_t weights = 0;  // dense consts written
};

// Before any work, refuses (InvalidArgument) an output that is, holds or lies inside `input`, or
// that exists and is not a package (README "Path rules").
Status Decompress(const std::string& input, const std::string& output, const DecompressOptions& options,
                  DecompressReport* report);

}  // namespace palettize
