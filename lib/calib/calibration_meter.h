// The evaluator behind allocation by measured output error (compress/output_meter.h): the
// calibration samples read once, the uncompressed model run on each (the reference), then any
// number of runs with some consts replaced, each pair's error normalised by its reference's peak.
// Runs may go on from several threads at once: each takes a loaded copy of the package from a pool
// (the interpreter writes into the package it runs), made as needed, so there are as many copies
// as runs in flight.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "compress/output_meter.h"
#include "eval/tensor.h"
#include "package/package.h"

namespace palettize {

class CalibrationMeter : public OutputMeter {
 public:
  // `model`: the input package; `inputs`: .npz files or folders of them (one sample each; inputs a
  // file lacks generated with seed 0, as `compare --inputs`); `function` of the program is run.
  CalibrationMeter(std::string model, std::vector<std::string> inputs, std::string function);

  Status Prepare(int threads) override;
  size_t Pairs() const override { return samples_.size() * names_.size(); }
  size_t Samples() const override { return samples_.size(); }
  size_t Outputs() const override { return names_.size(); }
  Status Measure(const std::vector<SubstitutedWeight>& weights, std::vector<double>* errors) override;
  Status MeasureWritten(const std::string& path, std::vector<double>* errors) override;
  std::string SamplesDigest() const override { return digest_; }

 private:
  // Runs `package` (with `weights` in place) on every sample; errors per pair.
  Status Run(Package& package, const std::vector<SubstitutedWeight>& weights, std::vector<double>* errors);
  std::unique_ptr<Package> Take(Status* status);
  void Give(std::unique_ptr<Package> p);

  std::string model_, function_;
  std::vector<std::string> inputs_;
  std::vector<std::string> samples_;                        // the .npz files, in order
  std::vector<std::map<std::string, eval::Tensor>> feeds_;  // per sample, every input
  std::vector<std::string> names_;                          // the float outputs, in name order
  std::vector<std::vector<eval::Tensor>> reference_;        // per sample, per output
  std::vector<double> peak_sq_;                             // per pair: max |reference|^2, 1 when 0
  std::string digest_;                                      // SamplesDigest
  std::mutex mu_;
  std::vector<std::unique_ptr<Package>> pool_;
};

}  // namespace palettize
