// The exception boundary of the library: every public entry point runs its body through Guarded,
// so that nothing thrown inside (std::bad_alloc from a size a malformed file claims, a
// filesystem_error, nlohmann's or yaml-cpp's exceptions, an out_of_range from .at()) leaves the
// library. The caller gets one Status line instead of std::terminate.
#pragma once

#include <string>
#include <utility>

#include "palettize/status.h"

namespace palettize {

// The exception being handled as a Status: "where: what". File-system and stream failures are
// I/O errors, and so is running out of memory (as compress --output-dir always reported it);
// anything else is taken as input the library failed to refuse cleanly (invalid input, exit 2).
// Call only from inside a catch block.
Status StatusFromCurrentException(const std::string& where);

// f() (which returns a Status), or the Status of whatever it throws. `where` names the file the
// call works on, e.g. the input package.
template <typename F>
Status Guarded(const std::string& where, F&& f) {
  try {
    return std::forward<F>(f)();
  } catch (...) {
    return StatusFromCurrentException(where);
  }
}

}  // namespace palettize
