// Bit allocation (issue 14): which nbits each palettized weight gets so that the model is the best
// for a size (--target-bpw, --target-size) or the smallest for a quality (--min-snr). Every weight
// the config would palettize has a curve of candidates (one per nbits the output can hold, plus
// kept uncompressed); the solver picks one candidate per weight. docs/format.md describes the
// report's `allocation` section built from these types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "palettize/config.h"

namespace palettize {

enum class AllocationObjective {
  kTargetBpw,   // budget: bits per weight, 8 * bytes / elements of the allocated weights
  kTargetSize,  // budget: bytes of the allocated weights
  kMinSnr,      // budget: dB; each weight takes its smallest candidate with snr_db >= budget
  // budget: dB; with calibration samples, the smallest allocation on the measured cost's
  // Lagrangian path whose measured output PSNR (the worst (sample, output) pair) is >= budget.
  kMinOutputPsnr,
};

// What the solver minimises, summed over weights.
enum class AllocationCost {
  kSse,          // the weight's SSE after rounding to its dtype, as the report gives it
  kSensitivity,  // sum s_i (w_i - decoded_i)^2 with --sensitivity (the SKM objective)
  // sse / (sum w^2 / elements) = elements x 10^(-snr_db / 10): the SSE in units of the weight's
  // own mean square, so every weight's noise-to-signal ratio counts alike whatever its magnitude
  // (raw SSE favours the weights of small values). Not with sensitivities.
  kRelative,
  // Measured output error (calibration samples): the model run with only this weight at this
  // candidate, sum over samples and outputs of mse / peak^2 (peak = max |reference output|; 1 when
  // the reference is all zero) against the uncompressed model's outputs.
  kOutput,
};

// With measured costs (AllocationCost::kOutput): the output PSNR on the calibration samples the
// summed costs predict, and the one measured on the whole allocated model. PSNR per (sample,
// output) pair is 10 log10(peak^2 / mse), as `compare --inputs` gives it; `worst` is the lowest
// pair, `mean` is -10 log10 of the pairs' mean mse / peak^2.
struct AllocationOutputs {
  size_t samples = 0, outputs = 0;
  double predicted_worst_psnr_db = 0, predicted_mean_psnr_db = 0;
  double measured_worst_psnr_db = 0, measured_mean_psnr_db = 0;
  // "written": the output package run after it was written; "substituted": the chosen decoded
  // weights put in place of the originals in the evaluator (a dry run).
  std::string measured_on;
  // kMinOutputPsnr: each evaluated allocation, in the order probed.
  struct Probe {
    uint64_t bytes = 0;
    double worst_psnr_db = 0;
    bool passed = false;
  };
  std::vector<Probe> probes;
  size_t path_steps = 0;  // allocations on the Lagrangian path the search bisected over
};

// One way to store one weight.
struct AllocationCandidate {
  int nbits = 0;       // 1, 2, 3, 4, 6, 8; 0 = kept uncompressed
  uint64_t bytes = 0;  // exact stored bytes as written: packed indices + tables + scales (or dense)
  double sse = 0;      // 0 when uncompressed
  double cost = 0;     // per AllocationCost; 0 when uncompressed
  double snr_db = 0;   // 10 log10(sum w^2 / sse); infinite when sse == 0
};

struct WeightAllocation {
  std::string name;        // the const (package) or tensor (checkpoint) name, as in the report
  std::string config_key;  // the op_name_configs / module_name_configs key that selects this weight
  PalettizeConfig config;  // the config planning resolved for it; the allocation changes only nbits
  uint64_t elements = 0;
  std::vector<AllocationCandidate> candidates;  // ascending bytes; the last is kept uncompressed
  int chosen = -1;                              // index into candidates
};

struct Allocation {
  AllocationObjective objective = AllocationObjective::kTargetBpw;
  AllocationCost cost = AllocationCost::kSse;
  double budget = 0;                      // bpw, bytes or dB, per objective
  uint64_t bytes = 0;                     // achieved: sum of the chosen candidates' bytes
  uint64_t elements = 0;                  // sum of the allocated weights' elements
  double bpw = 0;                         // 8 * bytes / elements
  double total_cost = 0;                  // sum of the chosen candidates' cost
  double gap = 0;                         // proven upper bound on total_cost - optimum; 0 when proven optimal
  std::vector<WeightAllocation> weights;  // in model order
  std::optional<AllocationOutputs> outputs;  // AllocationCost::kOutput only
};

}  // namespace palettize
