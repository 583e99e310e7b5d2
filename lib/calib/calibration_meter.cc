#include "calib/calibration_meter.h"

#include <cmath>
#include <limits>
#include <unordered_map>

#include "eval/interpreter.h"
#include "eval/sample_inputs.h"
#include "palettize/option_names.h"
#include "util/digest.h"
#include "util/file.h"

namespace palettize {

CalibrationMeter::CalibrationMeter(std::string model, std::vector<std::string> inputs, std::string function)
    : model_(std::move(model)), function_(std::move(function)), inputs_(std::move(inputs)) {}

std::unique_ptr<Package> CalibrationMeter::Take(Status* status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!pool_.empty()) {
      std::unique_ptr<Package> p = std::move(pool_.back());
      pool_.pop_back();
      return p;
    }
  }
  auto p = std::make_unique<Package>();
  *status = p->Load(model_);
  return p;
}

void CalibrationMeter::Give(std::unique_ptr<Package> p) {
  std::lock_guard<std::mutex> lock(mu_);
  pool_.push_back(std::move(p));
}

Status CalibrationMeter::Prepare(int /*threads*/) {
  samples_.clear();
  names_.clear();
  PALETTIZE_RETURN_IF_ERROR(eval::ListSamples(inputs_, GetOptionNames().calibration, &samples_));
  Status status;
  std::unique_ptr<Package> package = Take(&status);
  PALETTIZE_RETURN_IF_ERROR(status);
  feeds_.assign(samples_.size(), {});
  reference_.assign(samples_.size(), {});
  for (size_t s = 0; s < samples_.size(); ++s) {
    PALETTIZE_RETURN_IF_ERROR(eval::SampleInputs(*package, function_, samples_[s], 0, &feeds_[s], nullptr));
    std::map<std::string, eval::Tensor> outputs;
    eval::Interpreter interp(*package);
    PALETTIZE_RETURN_IF_ERROR(interp.Run(function_, feeds_[s], &outputs));
    // Float outputs only: an integer or bool output (a class label, an index) changes by whole
    // steps, so its error says which label flipped, not by how much the model moved.
    if (s == 0) {
      for (const auto& [name, t] : outputs)
        if (t.is_float()) names_.push_back(name);
      if (names_.empty())
        return Status::InvalidInput(model_ + ": function '" + function_ +
                                    "' has no float output to measure the allocation on");
    }
    for (const std::string& name : names_) reference_[s].push_back(std::move(outputs.at(name)));
  }
  peak_sq_.clear();
  for (const auto& sample : reference_)
    for (const eval::Tensor& t : sample) {
      double peak = 0;
      for (size_t k = 0; k < t.size(); ++k) peak = std::fmax(peak, std::fabs(t.at(k)));
      peak_sq_.push_back(peak > 0 ? peak * peak : 1.0);
    }
  // The samples as read (a generated input is the same for the same file), the function and the
  // outputs: what the errors of a pair depend on besides the model and the candidate.
  Digest d;
  d.Update(function_).Update(uint64_t(samples_.size()));
  for (const std::string& sample : samples_) {
    std::string bytes;
    PALETTIZE_RETURN_IF_ERROR(ReadFileToString(sample, &bytes));
    d.Update(bytes);
  }
  for (const std::string& name : names_) d.Update(name);
  digest_ = d.Hex();
  Give(std::move(package));
  return Status::OK();
}

Status CalibrationMeter::Run(Package& package, const std::vector<SubstitutedWeight>& weights,
                             std::vector<double>* errors) {
  std::vector<eval::Tensor> values(weights.size());
  std::unordered_map<std::string, const eval::Tensor*> by_name;
  for (size_t i = 0; i < weights.size(); ++i) {
    const TensorShape& shape = *weights[i].shape;
    values[i] = eval::Tensor(shape.mil_type, std::vector<int64_t>(shape.dims.begin(), shape.dims.end()));
    const std::vector<double>& v = *weights[i].values;
    for (size_t k = 0; k < v.size() && k < values[i].size(); ++k) values[i].set(k, v[k]);
    by_name[*weights[i].name] = &values[i];
  }
  errors->assign(Pairs(), 0.0);
  for (size_t s = 0; s < samples_.size(); ++s) {
    std::map<std::string, eval::Tensor> outputs;
    eval::Interpreter interp(package);
    interp.SetConstValues(&by_name);
    PALETTIZE_RETURN_IF_ERROR(interp.Run(function_, feeds_[s], &outputs));
    for (size_t o = 0; o < names_.size(); ++o) {
      auto it = outputs.find(names_[o]);
      const eval::Tensor& x = reference_[s][o];
      if (it == outputs.end() || it->second.shape() != x.shape() || it->second.dtype() != x.dtype())
        return Status::InvalidInput(package.path() + ": output '" + names_[o] +
                                    "' differs in name, dtype or shape from the original's");
      const eval::Tensor& y = it->second;
      double sse = 0;
      for (size_t k = 0; k < x.size(); ++k) {
        const double d = x.at(k) - y.at(k);
        sse += d * d;
      }
      const double mse = x.size() ? sse / double(x.size()) : 0;
      (*errors)[s * names_.size() + o] = mse / peak_sq_[s * names_.size() + o];  // NaN stays NaN
    }
  }
  return Status::OK();
}

Status CalibrationMeter::Measure(const std::vector<SubstitutedWeight>& weights, std::vector<double>* errors) {
  Status status;
  std::unique_ptr<Package> package = Take(&status);
  PALETTIZE_RETURN_IF_ERROR(status);
  status = Run(*package, weights, errors);
  Give(std::move(package));
  return status;
}

Status CalibrationMeter::MeasureWritten(const std::string& path, std::vector<double>* errors) {
  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(path));
  return Run(package, {}, errors);
}

}  // namespace palettize
