// The costs file of a sharded measured sweep (README "Sharding the measured sweep"; docs/format.md
// section 11): one slice K of N of the (weight, candidate) pairs that allocation by measured output
// error runs the model for, with each pair's errors, so that slices measured on several machines
// merge into the costs one run would have measured. JSON, version 1:
//
//   {"format": "palettize-costs", "version": 1,
//    "model": "fnv1a64:...",       the input package (package/package_digest.h)
//    "candidates": "fnv1a64:...",  the swept candidates: every weight's widths, bytes and tables
//    "samples": "fnv1a64:...",     the calibration samples' bytes and the outputs measured
//    "shard": {"index": K, "count": N},
//    "tasks": T,                   the pairs of the whole sweep; this slice has those t % N == K
//    "sample_count": S, "output_count": O,  every "errors" has S x O, sample-major
//    "costs": [{"task": t, "weight": NAME, "nbits": B, "errors": [e, ...]}, ...]}
//
// Errors are written as JSON numbers that read back to the same double (nlohmann's shortest
// round-trip form), and "nan", "inf" as strings, so that a merged sweep is bit for bit the measured one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

struct CostsEntry {
  uint64_t task = 0;
  std::string weight;
  int nbits = 0;
  std::vector<double> errors;  // per (sample, output) pair
};

struct CostsFile {
  std::string model, candidates, samples;
  uint64_t index = 0, count = 1;  // slice `index` of `count`
  uint64_t tasks = 0;
  uint64_t sample_count = 0, output_count = 0;  // (sample, output) pairs: sample_count x output_count
  std::vector<CostsEntry> entries;              // ascending task
};

constexpr int kCostsFileVersion = 1;

// "K/N" with 0 <= K < N (decimal, no sign); else InvalidArgument "OPTION: 'TEXT' is not K/N (slice
// K of N, 0 <= K < N)".
Status ParseShard(const std::string& text, const std::string& option, uint64_t* index, uint64_t* count);

std::string CostsFileToJson(const CostsFile& file);

// Reads and checks `path`: the format, its version, every field's type, entries of this slice in
// ascending task order (every task of it once), each with one error per pair. One-line InvalidInput "PATH:
// FIELD: ...".
Status ReadCostsFile(const std::string& path, CostsFile* out);

}  // namespace palettize
