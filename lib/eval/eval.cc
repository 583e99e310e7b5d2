// palettize eval (palettize/eval.h): inputs read or generated, one run of the interpreter, the
// outputs summarised (and written).
#include "palettize/eval.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>

#include "eval/input_gen.h"
#include "eval/interpreter.h"
#include "mil/dtype.h"
#include "package/package.h"
#include "util/guard.h"

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
  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(model));
  std::vector<std::pair<std::string, const mil::ValueType*>> declared;
  PALETTIZE_RETURN_IF_ERROR(eval::Interpreter::FunctionInputs(package, options.function, &declared));
  std::map<std::string, eval::Tensor> inputs;
  if (!options.inputs_path.empty())
    return Status::InvalidArgument(options.inputs_path + ": --inputs is not supported yet");
  for (const auto& [name, type] : declared) {
    eval::Tensor t;
    PALETTIZE_RETURN_IF_ERROR(eval::GenerateInput(name, *type, options.seed, &t));
    EvalTensorSummary s = Summarize(name, t);
    s.generated = true;
    report->inputs.push_back(s);
    inputs[name] = std::move(t);
  }
  eval::Interpreter interp(package);
  std::map<std::string, eval::Tensor> outputs;
  PALETTIZE_RETURN_IF_ERROR(interp.Run(options.function, std::move(inputs), &outputs));
  for (const auto& [name, t] : outputs) report->outputs.push_back(Summarize(name, t));
  return Status::OK();
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
