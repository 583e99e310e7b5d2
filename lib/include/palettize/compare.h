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

// One output of the function on one sample: the original's value x (the reference) against the
// compressed package's y, both as float64.
struct OutputComparison {
  std::string name;
  std::string sample;  // the .npz path
  std::string dtype;   // numpy-style, "float32"
  std::vector<int64_t> shape;
  double peak = 0;  // max |x|
  double mse = 0;   // mean (x - y)^2
  // 10 log10(peak^2 / mse): +infinity when mse == 0 (identical), -infinity when peak == 0 < mse,
  // NaN when an output holds NaN.
  double psnr_db = 0;
  // <x, y> / (|x| |y|): 1 when both are all zero, 0 when only one is.
  double cosine = 0;
  double max_abs_error = 0;  // max |x - y|
};

// One output over every sample: the worst PSNR, the mean cosine, the largest error.
struct OutputTotals {
  std::string name;
  double min_psnr_db = 0, mean_cosine = 0, max_abs_error = 0;
};

struct CompareOutputsOptions {
  // .npz files of inputs, or folders whose *.npz files (in name order) are taken; one sample each.
  std::vector<std::string> inputs;
  std::string function = "main";
  // Inputs a sample lacks are generated as by `palettize eval --seed` (the same for both packages).
  uint64_t seed = 0;
};

struct CompareReport {
  std::string original;
  std::string compressed;
  std::vector<WeightComparison> weights;  // the original's weights, in inspect's order
  // Over the weights compared (not missing or mismatched): the SNR of all of them together,
  // the largest error, and the worst weight's SNR (+infinity when every weight is equal).
  double signal = 0, sse = 0, snr_db = 0, max_abs_error = 0, min_snr_db = 0;
  size_t palettized = 0, constexpr_other = 0, unchanged = 0, missing = 0, mismatched = 0;

  // Output fidelity (CompareOutputs); empty without --inputs.
  std::vector<std::string> samples;         // the .npz files run, in order
  std::vector<OutputComparison> outputs;    // per output (by name), then per sample
  std::vector<OutputTotals> output_totals;  // per output, over the samples
};

// Reads both packages and compares every weight. Missing and mismatched weights are listed in
// the report, not errors here (see CheckComparable); a package that cannot be read or a chain
// that cannot be evaluated is.
Status Compare(const std::string& original, const std::string& compressed, CompareReport* report);

// Runs options.function of both packages on every sample (inputs as `palettize eval --inputs
// FILE` makes them, from the original's input description) and fills report->samples, outputs and
// output_totals. Errors, each one line naming the file: a bad .npz or an input it does not match
// (as eval's), a folder with no .npz (InvalidArgument), the two functions' outputs differing in
// name, dtype or shape, or a string output (InvalidInput).
Status CompareOutputs(const std::string& original, const std::string& compressed,
                      const CompareOutputsOptions& options, CompareReport* report);

// Empty when every output has a PSNR of at least min_psnr_db on every sample (+infinity passes,
// NaN does not), else one line starting with the compressed package's path: how many (output,
// sample) pairs fall below and the worst.
std::string CheckMinOutputPsnr(const CompareReport& report, double min_psnr_db);

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
