// Compare: how far a compressed package's weights are from the original's, so that a CI step can
// gate on quality. Every const weight of the original is matched by program, function and name
// with the compressed package's const or constexpr chain of that name, which is decompressed as
// `palettize decompress` does (bit for bit what coremltools' decompress_weights gives).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

// How the compressed package holds a weight of the original.
enum class WeightState {
  kPalettized,  // a constexpr_lut_to_dense chain (with any shift/scale ops around it)
  kConstexpr,   // a constexpr_blockwise_shift_scale chain with no table
  kUnchanged,   // a plain const (its values may still differ: see sse)
  kMissing,     // no const or constexpr op of that name in that program and function
  kMismatch,    // present, but its dtype or shape differs from the original's
};

// "palettized", "constexpr", "unchanged", "missing", "mismatch": the JSON names.
const char* WeightStateName(WeightState state);

struct WeightComparison {
  std::string program;  // "" for the root model, "pipeline.models[1]" for nested ones
  std::string function;
  std::string name;
  std::string dtype;  // the original's
  std::vector<uint64_t> shape;
  WeightState state = WeightState::kMissing;
  int nbits = 0;  // palettized only: log2 of the table length
  // Missing and mismatch only: "no const or constexpr op of this name", or what differs:
  // "float32 [4, 4], not float16 [4, 4] as in the original".
  std::string problem;
  // Original x against compressed y, both as float64: signal = sum x^2, sse = sum (x - y)^2.
  // Zero for missing and mismatched weights.
  double signal = 0;
  double sse = 0;
  double max_abs_error = 0;
  double snr_db = 0;  // 10 log10(signal / sse): +infinity when sse == 0, -infinity when only signal == 0
};

struct CompareReport {
  std::string original;
  std::string compressed;
  std::vector<WeightComparison> weights;  // the original's weights, in inspect's order
  // Over the weights compared (not missing or mismatched): the SNR of all of them together,
  // the largest error, and the worst weight's SNR (+infinity when every weight is equal).
  double signal = 0, sse = 0, snr_db = 0, max_abs_error = 0, min_snr_db = 0;
  size_t palettized = 0, constexpr_other = 0, unchanged = 0, missing = 0, mismatched = 0;
};

// Reads both packages and compares every weight. Missing and mismatched weights are listed in
// the report, not errors here (see CheckComparable); a package that cannot be read or a chain
// that cannot be evaluated is.
Status Compare(const std::string& original, const std::string& compressed, CompareReport* report);

// InvalidInput naming the first missing or mismatched weight (and how many there are), else OK.
Status CheckComparable(const CompareReport& report);

// Empty when every weight compared has an SNR of at least min_snr_db (an infinite SNR passes),
// else one line starting with the compressed package's path: how many weights fall below and
// which is the worst, e.g. "c.mlpackage: 2 of 5 weights have an SNR below 30 dB; the worst,
// main/w, has 21.53 dB".
std::string CheckMinSnr(const CompareReport& report, double min_snr_db);

// The report as JSON (docs/format.md section 8).
std::string CompareToJson(const CompareReport& report);

// One line per weight and a totals line, for people.
std::string CompareToTable(const CompareReport& report);

}  // namespace palettize
