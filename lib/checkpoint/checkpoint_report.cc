// Renderings of a CheckpointReport: JSON (docs/format.md section 9), a summary, a dry-run plan.
// The JSON is the package report's (report/report.cc) with what a checkpoint has instead of
// programs, functions and consuming ops: each tensor's module and module type.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "palettize/checkpoint.h"
#include "report/json_text.h"
#include "report/report_parts.h"

namespace palettize {

namespace {

std::string ModuleText(const CheckpointModule& m) {
  return m.type.empty() ? "" : " (" + m.type + " " + m.module + ")";
}

}  // namespace

std::string CheckpointReportToJson(const CheckpointReport& r, bool with_timings) {
  const nlohmann::ordered_json base = CompressReportJsonValue(r.report, with_timings);
  nlohmann::ordered_json weights = nlohmann::ordered_json::array();
  for (size_t i = 0; i < base["weights"].size(); ++i) {
    nlohmann::ordered_json w;
    for (const auto& [key, value] : base["weights"][i].items()) {
      if (key == "program" || key == "function" || key == "consumers" || key == "shared_with") continue;
      w[key] = value;
      if (key == "shape") {
        const CheckpointModule& m = r.modules[i];
        w["module"] = m.type.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(m.module);
        w["module_type"] = m.type.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(m.type);
      }
    }
    weights.push_back(std::move(w));
  }
  nlohmann::ordered_json out = {
      {"input", base["input"]},  {"output", base["output"]},           {"format", "safetensors"},
      {"packed", r.packed},      {"sensitivity", base["sensitivity"]}, {"weights", weights},
      {"totals", base["totals"]}};
  if (base.contains("allocation")) out["allocation"] = base["allocation"];
  return JsonText(out);
}

std::string CheckpointSummary(const CheckpointReport& rep) {
  const CompressReport& r = rep.report;
  char line[256];
  std::snprintf(line, sizeof line, "palettized %zu tensors (%zu kept): %s -> %s %s(%.2fx) in %.2f s\n",
                r.palettized, r.skipped, FormatBytes(r.bytes_before).c_str(),
                FormatBytes(r.bytes_after).c_str(), rep.packed ? "" : "packed, written dense ",
                r.bytes_after > 0 ? double(r.bytes_before) / double(r.bytes_after) : 0.0, r.wall_seconds);
  std::string out = line;
  for (const WeightReport& w : r.weights)
    if (!w.palettized && w.has_config && w.reason.find("weight_threshold") == std::string::npos)
      out += "  skipped " + w.name + ": " + w.reason + "\n";
  if (r.allocation) out += "  " + AllocationSummary(*r.allocation);
  if (!r.sensitivity_file.empty()) {
    size_t weighted = 0, plain = 0;
    for (const WeightReport& w : r.weights)
      if (w.palettized && w.sensitivity_checked) (w.sensitivity.empty() ? plain : weighted)++;
    out += "  sensitivity " + r.sensitivity_file + ": " + std::to_string(weighted) + " tensors weighted, " +
           std::to_string(plain) + " plain k-means (no tensor)\n";
    if (!r.unused_sensitivities.empty())
      out += "  " + std::to_string(r.unused_sensitivities.size()) +
             " sensitivity tensors applied to no tensor\n";
  }
  return out;
}

std::string CheckpointPlanText(const CheckpointReport& rep, bool with_timings) {
  const CompressReport& r = rep.report;
  std::string out;
  for (size_t i = 0; i < r.weights.size(); ++i) {
    const WeightReport& w = r.weights[i];
    out += w.name + ModuleText(rep.modules[i]) + ": ";
    if (!w.palettized) {
      out += "keep: " + w.reason + "\n";
      continue;
    }
    out += DescribeConfig(w.config) + " (" + w.config_source + ")";
    if (!w.sensitivity.empty())
      out += ", sensitivity '" + w.sensitivity + "'";
    else if (w.sensitivity_checked)
      out += ", no sensitivity: plain k-means";
    out += TimingText(w, with_timings) + "\n";
  }
  for (const std::string& u : r.unused_sensitivities) out += "sensitivity '" + u + "' applies to no tensor\n";
  out += std::to_string(r.palettized) + " tensors to palettize, " + std::to_string(r.skipped) + " kept\n";
  if (r.allocation) out += AllocationSummary(*r.allocation);
  return out;
}

}  // namespace palettize
