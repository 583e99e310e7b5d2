// Output fidelity: both packages' function run on the same samples (lib/eval), each output of the
// compressed package against the original's, which is the reference.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "eval/interpreter.h"
#include "eval/sample_inputs.h"
#include "mil/dtype.h"
#include "package/package.h"
#include "palettize/compare.h"
#include "util/guard.h"

namespace palettize {

namespace {

std::string Describe(const eval::Tensor& t) {
  std::string out = DTypeName(t.dtype()) + " [";
  for (size_t k = 0; k < t.shape().size(); ++k) out += (k ? ", " : "") + std::to_string(t.shape()[k]);
  return out + "]";
}

// Both functions must take the same inputs (names, dtypes and shapes), so that one set of inputs,
// made from the original's description, runs both.
Status CheckSameInputs(const Package& x, const Package& y, const std::string& function) {
  std::vector<std::pair<std::string, const mil::ValueType*>> xs, ys;
  PALETTIZE_RETURN_IF_ERROR(eval::Interpreter::FunctionInputs(x, function, &xs));
  PALETTIZE_RETURN_IF_ERROR(eval::Interpreter::FunctionInputs(y, function, &ys));
  auto names = [](const std::vector<std::pair<std::string, const mil::ValueType*>>& v) {
    std::string out;
    for (const auto& p : v) out += (out.empty() ? "" : ", ") + p.first;
    return out;
  };
  bool same = xs.size() == ys.size();
  for (size_t k = 0; same && k < xs.size(); ++k)
    same =
        xs[k].first == ys[k].first && xs[k].second->SerializeAsString() == ys[k].second->SerializeAsString();
  if (same) return Status::OK();
  return Status::InvalidInput(y.model_path() + ": the inputs of function '" + function + "' (" + names(ys) +
                              ") differ from the original's (" + names(xs) + ") in name, dtype or shape");
}

// The two runs' outputs must be the same set of names, each of one dtype and shape.
Status CheckSameOutputs(const std::map<std::string, eval::Tensor>& x,
                        const std::map<std::string, eval::Tensor>& y, const std::string& compressed_file,
                        const std::string& function) {
  for (const auto& [name, t] : x)
    if (!y.count(name))
      return Status::InvalidInput(compressed_file + ": function '" + function + "' has no output '" + name +
                                  "', which the original has");
  for (const auto& [name, t] : y) {
    auto it = x.find(name);
    if (it == x.end())
      return Status::InvalidInput(compressed_file + ": function '" + function + "' has an output '" + name +
                                  "' the original lacks");
    if (t.dtype() != it->second.dtype() || t.shape() != it->second.shape())
      return Status::InvalidInput(compressed_file + ": output '" + name + "' is " + Describe(t) + ", not " +
                                  Describe(it->second) + " as in the original");
    if (t.is_string())
      return Status::InvalidInput(compressed_file + ": output '" + name +
                                  "' holds strings, which have no error");
  }
  return Status::OK();
}

OutputComparison Measure(const std::string& name, const std::string& sample, const eval::Tensor& x,
                         const eval::Tensor& y) {
  OutputComparison c;
  c.name = name;
  c.sample = sample;
  c.dtype = DTypeName(x.dtype());
  c.shape = x.shape();
  double xx = 0, yy = 0, xy = 0, sse = 0;
  bool nan = false;
  for (size_t k = 0; k < x.size(); ++k) {
    const double a = x.at(k), b = y.at(k), d = a - b;
    nan = nan || std::isnan(a) || std::isnan(b);
    c.peak = std::max(c.peak, std::fabs(a));
    c.max_abs_error = std::max(c.max_abs_error, std::fabs(d));
    sse += d * d;
    xx += a * a;
    yy += b * b;
    xy += a * b;
  }
  const double inf = std::numeric_limits<double>::infinity(),
               nan_v = std::numeric_limits<double>::quiet_NaN();
  c.mse = x.size() ? sse / double(x.size()) : 0;
  if (nan) {
    c.mse = c.psnr_db = c.cosine = c.max_abs_error = nan_v;
    return c;
  }
  if (c.mse == 0)
    c.psnr_db = inf;
  else if (c.peak == 0)
    c.psnr_db = -inf;
  else
    c.psnr_db = 10 * std::log10(c.peak * c.peak / c.mse);
  if (xx == 0 && yy == 0)
    c.cosine = 1;
  else if (xx == 0 || yy == 0)
    c.cosine = 0;
  else
    c.cosine = xy / (std::sqrt(xx) * std::sqrt(yy));
  return c;
}

// Per output over the samples; NaN in any sample makes that total NaN.
std::vector<OutputTotals> Totals(const std::vector<OutputComparison>& outputs) {
  std::map<std::string, std::pair<OutputTotals, size_t>> by_name;
  for (const OutputComparison& c : outputs) {
    auto [it, fresh] = by_name.try_emplace(c.name);
    OutputTotals& t = it->second.first;
    if (fresh) {
      t.name = c.name;
      t.min_psnr_db = c.psnr_db;
      t.max_abs_error = c.max_abs_error;
    }
    t.min_psnr_db = std::isnan(t.min_psnr_db) || std::isnan(c.psnr_db) ? std::nan("")
                                                                       : std::min(t.min_psnr_db, c.psnr_db);
    t.max_abs_error = std::isnan(t.max_abs_error) || std::isnan(c.max_abs_error)
                          ? std::nan("")
                          : std::max(t.max_abs_error, c.max_abs_error);
    t.mean_cosine += c.cosine;
    ++it->second.second;
  }
  std::vector<OutputTotals> totals;
  for (auto& [name, t] : by_name) {
    t.first.mean_cosine /= double(t.second);
    totals.push_back(t.first);
  }
  return totals;
}

Status CompareOutputsUnguarded(const std::string& original, const std::string& compressed,
                               const CompareOutputsOptions& options, CompareReport* report) {
  report->samples.clear();
  report->outputs.clear();
  report->output_totals.clear();
  PALETTIZE_RETURN_IF_ERROR(eval::ListSamples(options.inputs, "--inputs", &report->samples));
  Package x_package, y_package;
  PALETTIZE_RETURN_IF_ERROR(x_package.Load(original));
  PALETTIZE_RETURN_IF_ERROR(y_package.Load(compressed));
  PALETTIZE_RETURN_IF_ERROR(CheckSameInputs(x_package, y_package, options.function));
  std::map<std::string, std::vector<OutputComparison>> by_output;  // the report's order: output, then sample
  for (const std::string& sample : report->samples) {
    std::map<std::string, eval::Tensor> inputs, x, y;
    PALETTIZE_RETURN_IF_ERROR(
        eval::SampleInputs(x_package, options.function, sample, options.seed, &inputs, nullptr));
    {
      eval::Interpreter interp(x_package);
      PALETTIZE_RETURN_IF_ERROR(interp.Run(options.function, inputs, &x));
    }
    {
      eval::Interpreter interp(y_package);
      PALETTIZE_RETURN_IF_ERROR(interp.Run(options.function, std::move(inputs), &y));
    }
    PALETTIZE_RETURN_IF_ERROR(CheckSameOutputs(x, y, y_package.model_path(), options.function));
    for (const auto& [name, t] : x) by_output[name].push_back(Measure(name, sample, t, y.at(name)));
  }
  for (auto& [name, list] : by_output)
    for (OutputComparison& c : list) report->outputs.push_back(std::move(c));
  report->output_totals = Totals(report->outputs);
  return Status::OK();
}

std::string Db(double db) {
  if (std::isinf(db)) return db > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", db);
  return buf;
}

}  // namespace

Status CompareOutputs(const std::string& original, const std::string& compressed,
                      const CompareOutputsOptions& options, CompareReport* report) {
  return Guarded(compressed, [&] { return CompareOutputsUnguarded(original, compressed, options, report); });
}

std::string CheckMinOutputPsnr(const CompareReport& report, double min_psnr_db) {
  size_t below = 0;
  const OutputComparison* worst = nullptr;
  for (const OutputComparison& c : report.outputs) {
    if (c.psnr_db >= min_psnr_db) continue;  // NaN is below
    ++below;
    if (worst == nullptr || std::isnan(c.psnr_db) || c.psnr_db < worst->psnr_db) worst = &c;
  }
  if (below == 0) return "";
  return report.compressed + ": " + std::to_string(below) + " of " + std::to_string(report.outputs.size()) +
         " (output, sample) pairs have an output PSNR below " + Db(min_psnr_db) + " dB; the worst, '" +
         worst->name + "' on " + worst->sample + ", has " + Db(worst->psnr_db) + " dB";
}

}  // namespace palettize
