// Allocation by measured output error (issue 15 item 5): what the spine needs from a model run on
// calibration samples. The spine (this layer) decides which weights to try at which candidate;
// running the program is the evaluator's (lib/eval, higher up), so the spine asks through this
// interface and lib/calib implements it. Errors are measured per (sample, output) pair, each
// normalised by its reference's peak, so that outputs of different scales add up: a pair's error
// is mse / peak^2 = 10^(-PSNR/10), peak = max |reference| (1 when the reference is all zero).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "mil/weights.h"
#include "palettize/status.h"

namespace palettize {

// One const replaced by the values it decodes to (row-major, exact in its dtype).
struct SubstitutedWeight {
  const std::string* name = nullptr;  // the const's output name in the evaluated function
  const TensorShape* shape = nullptr;
  const std::vector<double>* values = nullptr;
};

class OutputMeter {
 public:
  virtual ~OutputMeter() = default;
  // Runs the uncompressed model on every sample once (the reference). Called before the others.
  virtual Status Prepare(int threads) = 0;
  // The number of (sample, output) pairs, and of samples and outputs.
  virtual size_t Pairs() const = 0;
  virtual size_t Samples() const = 0;
  virtual size_t Outputs() const = 0;
  // Each pair's normalised error of the model with `weights` in place of their consts. Safe to
  // call from several threads at once.
  virtual Status Measure(const std::vector<SubstitutedWeight>& weights, std::vector<double>* errors) = 0;
  // Each pair's normalised error of the package written at `path` (the allocated model).
  virtual Status MeasureWritten(const std::string& path, std::vector<double>* errors) = 0;
  // After Prepare: the identity of what is measured (the samples' bytes, the function, the outputs
  // measured), util/digest.h's form; a sharded sweep's slices must agree on it.
  virtual std::string SamplesDigest() const = 0;
};

// The PSNR of one pair's normalised error, and of the worst and the mean pair.
double PairPsnrDb(double error);
double WorstPsnrDb(const std::vector<double>& errors);
double MeanPsnrDb(const std::vector<double>& errors);

}  // namespace palettize
