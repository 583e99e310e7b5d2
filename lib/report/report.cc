// Renderings of a CompressReport: JSON (docs/format.md section 6), a summary, a dry-run plan.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "palettize/compress.h"
#include "report/allocation_json.h"
#include "report/json_text.h"
#include "report/report_parts.h"

namespace palettize {

namespace {

using json = nlohmann::ordered_json;

// null unless a sensitivity file was matched against this weight.
json SensitivityJson(const WeightReport& w) {
  if (!w.sensitivity_checked) return nullptr;
  const bool used = !w.sensitivity.empty() && w.sensitivity_note.empty();
  return {{"tensor", w.sensitivity.empty() ? json(nullptr) : json(w.sensitivity)},
          {"match", w.sensitivity_match.empty() ? json(nullptr) : json(w.sensitivity_match)},
          {"note", w.sensitivity_note},
          {"weighted_sse", used && w.palettized ? json(w.weighted_sse) : json(nullptr)}};
}

std::string Name(const WeightReport& w) {
  std::string n = w.program.empty() ? "" : w.program + "/";
  return n + w.function + "/" + w.name;
}

std::string SensitivityUnusedLine(const CompressReport& r) {
  std::string out =
      std::to_string(r.unused_sensitivities.size()) + " sensitivity tensors applied to no weight:";
  for (size_t i = 0; i < r.unused_sensitivities.size() && i < 5; ++i) out += " " + r.unused_sensitivities[i];
  if (r.unused_sensitivities.size() > 5) out += " ...";
  return out + "\n";
}

}  // namespace

nlohmann::ordered_json ConfigJson(const PalettizeConfig& c) {
  json j = {{"mode", ModeName(c.mode)},
            {"nbits", c.nbits == 0 ? json(nullptr) : json(c.nbits)},
            {"granularity", c.granularity == Granularity::kPerTensor ? "per_tensor" : "per_grouped_channel"},
            {"group_size", c.group_size},
            {"channel_axis", c.channel_axis ? json(*c.channel_axis) : json(nullptr)},
            {"cluster_dim", c.cluster_dim},
            {"enable_per_channel_scale", c.enable_per_channel_scale},
            {"lut_dtype", c.lut_dtype == LutDType::kInt8    ? json("int8")
                          : c.lut_dtype == LutDType::kUInt8 ? json("uint8")
                                                            : json(nullptr)},
            {"weight_threshold", c.weight_threshold}};
  return j;
}

std::string FormatBytes(uint64_t b) {
  char buf[32];
  if (b >= 1 << 20)
    std::snprintf(buf, sizeof buf, "%.2f MB", double(b) / (1 << 20));
  else if (b >= 1 << 10)
    std::snprintf(buf, sizeof buf, "%.1f KB", double(b) / (1 << 10));
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  return buf;
}

json CompressReportJsonValue(const CompressReport& r, bool with_timings) {
  json weights = json::array();
  for (const WeightReport& w : r.weights) {
    json consumers = json::array();
    for (const ConsumerInfo& c : w.consumers)
      consumers.push_back({{"op_type", c.op_type}, {"op_name", c.op_name}, {"input", c.input}});
    json j = {{"program", w.program},
              {"function", w.function},
              {"name", w.name},
              {"dtype", w.dtype},
              {"shape", w.shape},
              {"status", w.palettized ? "palettized" : "skipped"},
              {"reason", w.reason},
              {"consumers", consumers},
              {"config", w.has_config ? ConfigJson(w.config) : json(nullptr)},
              {"config_source", w.config_source},
              {"shared_with", w.shared_with.empty() ? json(nullptr) : json(w.shared_with)},
              {"nbits", w.palettized ? json(w.nbits) : json(nullptr)},
              {"luts", w.palettized ? json(w.luts) : json(nullptr)},
              {"bytes_before", w.bytes_before},
              {"bytes_after", w.bytes_after},
              {"sse", w.sse},
              {"max_abs_error", w.max_abs_error},
              // JSON has no infinity: a lossless weight (every element decoded exactly, sse exactly
              // 0) has snr_db null, and only it: the compressor never gives NaN or -infinity.
              {"snr_db", w.palettized && w.snr_db != INFINITY ? json(w.snr_db) : json(nullptr)},
              {"sensitivity", SensitivityJson(w)}};
    if (!w.scale_form.empty())
      j["per_channel_scale_form"] = {{"emitted", w.scale_form},
                                     {"wrapper_bytes", w.scale_wrapper_bytes},
                                     {"folded_bytes", w.scale_folded_bytes},
                                     {"note", w.scale_form_note}};
    if (with_timings) j["seconds"] = w.seconds;
    weights.push_back(std::move(j));
  }
  json targets = json::array();
  for (const auto& [path, ios] : r.targets)
    targets.push_back({{"program", path}, {"target", "iOS" + std::to_string(ios)}});
  json totals = {{"bytes_before", r.bytes_before},
                 {"bytes_after", r.bytes_after},
                 {"ratio", r.bytes_after > 0 ? double(r.bytes_before) / double(r.bytes_after) : 0.0},
                 {"weights_palettized", r.palettized},
                 {"weights_skipped", r.skipped}};
  if (with_timings) totals["wall_seconds"] = r.wall_seconds;
  json sensitivity = nullptr;
  if (!r.sensitivity_file.empty())
    sensitivity = {{"file", r.sensitivity_file},
                   {"normalize", r.sensitivity_normalize},
                   {"unused", r.unused_sensitivities}};
  json out = {{"input", r.input},           {"output", r.output}, {"targets", targets},
              {"sensitivity", sensitivity}, {"weights", weights}, {"totals", totals}};
  // Only runs with an allocation objective have the section, so other reports are unchanged.
  if (r.allocation) out["allocation"] = AllocationJsonValue(*r.allocation);
  return out;
}

std::string CompressReportToJson(const CompressReport& r, bool with_timings) {
  return JsonText(CompressReportJsonValue(r, with_timings));
}

std::string CompressSummary(const CompressReport& r) {
  char line[256];
  std::snprintf(line, sizeof line, "palettized %zu weights (%zu skipped): %s -> %s (%.2fx) in %.2f s\n",
                r.palettized, r.skipped, FormatBytes(r.bytes_before).c_str(),
                FormatBytes(r.bytes_after).c_str(),
                r.bytes_after > 0 ? double(r.bytes_before) / double(r.bytes_after) : 0.0, r.wall_seconds);
  std::string out = line;
  for (const auto& [path, ios] : r.targets)
    out += "  target " + (path.empty() ? std::string("(root)") : path) + ": iOS" + std::to_string(ios) + "\n";
  // Skips that a user may not expect: a config applied but the weight could not take it.
  for (const WeightReport& w : r.weights)
    if (!w.palettized && w.has_config && w.reason.find("weight_threshold") == std::string::npos)
      out += "  skipped " + Name(w) + ": " + w.reason + "\n";
  // A model from a pipeline that palettized it already comes out as a 1.00x copy; say why.
  const size_t chained = size_t(std::count_if(r.weights.begin(), r.weights.end(),
                                              [](const WeightReport& w) { return w.already_compressed; }));
  if (chained > 0)
    out +=
        "  " + std::to_string(chained) + (chained == 1 ? " weight was" : " weights were") +
        " already compressed in the input (constexpr_* ops) and copied as they are; `palettize decompress` "
        "first would let them be palettized again\n";
  if (r.allocation) out += "  " + AllocationSummary(*r.allocation);
  if (!r.sensitivity_file.empty()) {
    size_t weighted = 0, plain = 0;
    for (const WeightReport& w : r.weights)
      if (w.palettized && w.sensitivity_checked) (w.sensitivity.empty() ? plain : weighted)++;
    out += "  sensitivity " + r.sensitivity_file + ": " + std::to_string(weighted) + " weights weighted, " +
           std::to_string(plain) + " plain k-means (no tensor)\n";
    if (!r.unused_sensitivities.empty()) out += "  " + SensitivityUnusedLine(r);
  }
  return out;
}

std::string TimingText(const WeightReport& w, bool with_timings) {
  if (!with_timings || !w.palettized) return "";
  char text[32];
  std::snprintf(text, sizeof text, ", %.3f s", w.seconds);
  return text;
}

std::string CompressPlanText(const CompressReport& r, bool with_timings) {
  std::string out;
  for (const WeightReport& w : r.weights) {
    out += Name(w) + ": ";
    if (w.palettized) {
      out += DescribeConfig(w.config) + " (" + w.config_source + ")";
      if (!w.sensitivity.empty())
        out += ", sensitivity '" + w.sensitivity + "' (" + w.sensitivity_match + " match)";
      else if (w.sensitivity_checked)
        out += ", no sensitivity: plain k-means";
      out += TimingText(w, with_timings) + "\n";
    } else
      out += "skip: " + w.reason + "\n";
  }
  if (!r.unused_sensitivities.empty()) out += SensitivityUnusedLine(r);
  for (const auto& [path, ios] : r.targets)
    out += "target " + (path.empty() ? std::string("(root)") : path) + ": iOS" + std::to_string(ios) + "\n";
  out += std::to_string(r.palettized) + " weights to palettize, " + std::to_string(r.skipped) + " skipped\n";
  if (r.allocation) out += AllocationSummary(*r.allocation);
  return out;
}

}  // namespace palettize
