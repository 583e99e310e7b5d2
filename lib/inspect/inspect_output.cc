// The two renderings of a ModelInfo: JSON (schema in docs/format.md, "inspect --json") and a
// table for people.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "palettize/inspect.h"
#include "report/json_text.h"
#include "util/table.h"

namespace palettize {

namespace {

// "    main: evaluable by palettize eval", or which op types keep it from being.
std::string EvaluableLine(const ProgramInfo& p, const FunctionInfo& f) {
  std::string out = "    " + f.name + ": ";
  if (f.evaluable) return out + "evaluable by palettize eval\n";
  out += "not evaluable by palettize eval";
  if (!p.path.empty()) out += " (a program inside a pipeline)";
  std::string ops;
  for (const UnsupportedOpInfo& u : f.unsupported_ops)
    ops += (ops.empty() ? "" : ", ") + u.op_type + " x" + std::to_string(u.count) + " (e.g. '" +
           u.example_op + "')";
  if (!ops.empty()) out += "; unsupported ops: " + ops;
  return out + "\n";
}

}  // namespace

std::string InspectToJson(const ModelInfo& info) {
  using json = nlohmann::ordered_json;
  json programs = json::array();
  for (const ProgramInfo& p : info.programs) {
    json functions = json::array();
    for (const FunctionInfo& f : p.functions) {
      json unsupported = json::array();
      for (const UnsupportedOpInfo& u : f.unsupported_ops)
        unsupported.push_back({{"op_type", u.op_type}, {"count", u.count}, {"example_op", u.example_op}});
      functions.push_back({{"name", f.name},
                           {"opset", f.opset},
                           {"evaluable", f.evaluable},
                           {"unsupported_ops", unsupported}});
    }
    programs.push_back(
        {{"path", p.path}, {"specification_version", p.specification_version}, {"functions", functions}});
  }
  json weights = json::array();
  for (const WeightInfo& w : info.weights) {
    json consumers = json::array();
    for (const ConsumerInfo& c : w.consumers)
      consumers.push_back({{"op_type", c.op_type}, {"op_name", c.op_name}, {"input", c.input}});
    weights.push_back({{"program", w.program},
                       {"function", w.function},
                       {"name", w.name},
                       {"dtype", w.dtype},
                       {"shape", w.shape},
                       {"elements", w.elements},
                       {"bytes", w.bytes},
                       {"storage", w.in_blob ? "blob" : "immediate"},
                       {"unique_values", w.unique_values},
                       {"sparsity", w.sparsity},
                       {"consumers", consumers},
                       {"candidate", w.candidate},
                       {"reason", w.reason}});
  }
  json doc = {{"model",
               {{"path", info.path},
                {"specification_version", info.specification_version},
                {"type", info.type},
                {"programs", programs},
                {"total_weight_bytes", info.total_weight_bytes}}},
              {"weights", weights}};
  return JsonText(doc);
}

std::string InspectToTable(const ModelInfo& info) {
  std::string out = info.path + ": " + info.type + ", specification version " +
                    std::to_string(info.specification_version) + "\n";
  for (const ProgramInfo& p : info.programs) {
    out += "  program " + (p.path.empty() ? std::string("(root)") : p.path) + ":";
    for (const FunctionInfo& f : p.functions) out += " " + f.name + " (" + f.opset + ")";
    out += "\n";
    for (const FunctionInfo& f : p.functions) out += EvaluableLine(p, f);
  }
  size_t candidates = 0;
  std::vector<std::vector<std::string>> rows = {
      {"weight", "dtype", "shape", "storage", "unique", "sparsity", "consumers", "palettize"}};
  for (const WeightInfo& w : info.weights) {
    std::string shape;
    for (size_t i = 0; i < w.shape.size(); ++i) shape += (i ? "x" : "") + std::to_string(w.shape[i]);
    std::string consumers;
    for (const ConsumerInfo& c : w.consumers)
      consumers += (consumers.empty() ? "" : ", ") + c.op_type + "." + c.input;
    char sparsity[32];
    std::snprintf(sparsity, sizeof sparsity, "%.3f", w.sparsity);
    std::string name = w.program.empty() ? "" : w.program + "/";
    if (info.programs.size() > 1 || (!info.programs.empty() && info.programs[0].functions.size() > 1))
      name += w.function + "/";
    rows.push_back({name + w.name, w.dtype, shape, w.in_blob ? "blob" : "immediate",
                    std::to_string(w.unique_values), sparsity, consumers,
                    w.candidate ? "yes" : "no: " + w.reason});
    candidates += w.candidate;
  }
  out += FormatTable(rows, "  ");
  out += std::to_string(info.weights.size()) + " weights, " + std::to_string(candidates) + " to palettize, " +
         std::to_string(info.total_weight_bytes) + " bytes of stored values\n";
  return out;
}

}  // namespace palettize
