// The libFuzzer entry point of one harness: built once per harness with
// -DPALETTIZE_FUZZ_TARGET=<its function> (test/fuzz/CMakeLists.txt, PALETTIZE_FUZZ=ON).
#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return palettize::PALETTIZE_FUZZ_TARGET(data, size);
}
