// The fuzz harnesses, each a plain function so that the libFuzzer targets (build-fuzz/, clang,
// PALETTIZE_FUZZ=ON) and the regression replay (fuzz_replay, the normal gcc build) run the same
// code. Each returns 0; a bug shows as a crash, a sanitizer report or a __builtin_trap() where an
// invariant the library promises does not hold.
#pragma once

#include <cstddef>
#include <cstdint>

namespace palettize {

int FuzzBlobReader(const uint8_t* data, size_t size);  // weight.bin bytes
int FuzzMlProgram(const uint8_t* data, size_t size);   // a package archive (fuzz_package.h): inspect
int FuzzManifest(const uint8_t* data, size_t size);    // Manifest.json text
int FuzzConfig(const uint8_t* data, size_t size);      // a YAML config
int FuzzCompress(const uint8_t* data, size_t size);    // options byte + package archive: compress
int FuzzConstexpr(const uint8_t* data, size_t size);   // a compressed package archive: decompress, compare
int FuzzNpz(const uint8_t* data, size_t size);         // an .npz file: read, written again, read again
int FuzzEval(const uint8_t* data, size_t size);        // a package archive (+ inputs.npz): eval

struct FuzzTarget {
  const char* name;  // the harness's name: test/fuzz/<name>_fuzz.cc, regressions/<name>/
  int (*fn)(const uint8_t*, size_t);
};

inline constexpr FuzzTarget kFuzzTargets[] = {
    {"blob_reader", FuzzBlobReader},
    {"ml_program", FuzzMlProgram},
    {"manifest", FuzzManifest},
    {"config", FuzzConfig},
    {"compress", FuzzCompress},
    {"constexpr", FuzzConstexpr},
    {"npz", FuzzNpz},
    {"eval", FuzzEval},
};

}  // namespace palettize
