// Interrupted runs leave nothing behind: after this call, SIGINT, SIGTERM and SIGHUP remove every
// output this process is assembling (OUT.partial-XXXXXX beside each target) and end it with
// exit code 128 + the signal's number. A signal that arrives while outputs are being renamed
// into place waits until that commit is complete or undone. (SIGKILL cannot be caught: a killed
// run leaves its OUT.partial-XXXXXX.)
#pragma once

#include "palettize/status.h"

namespace palettize {

// Call once, from main() before any other thread exists: the signals are blocked in the calling
// thread, so every thread started later (TBB's workers included) inherits the block, and one
// thread waits for them. Errors: the thread could not be started.
Status RemoveStagedOutputsOnSignals();

}  // namespace palettize
