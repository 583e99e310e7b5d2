// palettize eval (palettize/eval.h): inputs read or generated, one run of the interpreter, the
// outputs summarised (and written).
#include "palettize/eval.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "eval/interpreter.h"
#include "eval/npz_io.h"
#include "eval/sample_inputs.h"
#include "mil/dtype.h"
#include "npy/npz.h"
#include "package/package.h"
#include "util/guard.h"
#include "util/path_rules.h"

namespace palettize {

namespace {

EvalTensorSummary Summarize(const std::string& name, const eval::Tensor& t) {
  EvalTensorSummary s;
  s.name = name;
  s.dtype = DTypeName(t.dtype());
  s.shape = t.shape();
  if (t.is_string() || t.size() == 0) {
    s.min = s.max = s.mean = std::numeric_limits<double>::quiet_NaN();
    return s;
  }
  s.min = s.max = t.at(0);
  double sum = 0;
  for (size_t k = 0; k < t.size(); ++k) {
    const double v = t.at(k);
    s.min = std::fmin(s.min, v);
    s.max = std::fmax(s.max, v);
    sum += v;
  }
  s.mean = sum / double(t.size());
  return s;
}

Status EvalUnguarded(const std::string& model, const EvalOptions& options, EvalReport* report) {
  *report = EvalReport();
  RunPaths paths;
  paths.inputs = {{"the input", model}, {"the --inputs file", options.inputs_path}};
  if (!options.outputs_path.empty()) paths.outputs.push_back({options.outputs_path, OutputKind::kFile});
  paths.overwrite = options.overwrite;
  PALETTIZE_RETURN_IF_ERROR(CheckRunPaths(paths));
  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(model));
  std::vector<std::pair<std::string, const mil::ValueType*>> declared;
  PALETTIZE_RETURN_IF_ERROR(eval::Interpreter::FunctionInputs(package, options.function, &declared));
  NpzFile npz;
  if (!options.inputs_path.empty()) {
    PALETTIZE_RETURN_IF_ERROR(npz.Open(options.inputs_path));
    PALETTIZE_RETURN_IF_ERROR(eval::CheckInputArrays(npz, options.inputs_path, options.function, declared));
  }
  std::map<std::string, eval::DescribedShape> described;
  PALETTIZE_RETURN_IF_ERROR(eval::DescribedShapes(package, options.function, declared, &described));
  std::map<std::string, eval::Tensor> inputs;
  for (const auto& [name, type] : declared) {
    eval::Tensor t;
    bool generated = false;
    auto d = described.find(name);
    PALETTIZE_RETURN_IF_ERROR(eval::ReadOrGenerateInput(
        name, *type, d == described.end() ? nullptr : &d->second,
        options.inputs_path.empty() ? nullptr : &npz, options.inputs_path, options.seed, &t, &generated));
    EvalTensorSummary s = Summarize(name, t);
    s.generated = generated;
    report->inputs.push_back(s);
    inputs[name] = std::move(t);
  }
  eval::Interpreter interp(package);
  std::map<std::string, eval::Tensor> outputs;
  PALETTIZE_RETURN_IF_ERROR(interp.Run(options.function, std::move(inputs), &outputs));
  for (const auto& [name, t] : outputs) report->outputs.push_back(Summarize(name, t));
  if (options.outputs_path.empty()) return Status::OK();
  std::vector<NpyOutArray> arrays(outputs.size());
  size_t k = 0;
  for (const auto& [name, t] : outputs)
    PALETTIZE_RETURN_IF_ERROR(eval::TensorToNpy(name, t, options.outputs_path, &arrays[k++]));
  return WriteNpz(options.outputs_path, arrays, options.overwrite);
}

std::string Number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

Status Eval(const std::string& model, const EvalOptions& options, EvalReport* report) {
  return Guarded(model, [&] { return EvalUnguarded(model, options, report); });
}

std::string EvalSummaryToText(const EvalReport& report) {
  std::string out;
  for (const EvalTensorSummary& s : report.outputs) {
    std::string shape = "[";
    for (size_t k = 0; k < s.shape.size(); ++k) shape += (k ? ", " : "") + std::to_string(s.shape[k]);
    out += s.name + "  " + s.dtype + " " + shape + "]  min " + Number(s.min) + "  max " + Number(s.max) +
           "  mean " + Number(s.mean) + "\n";
  }
  return out;
}

}  // namespace palettize
