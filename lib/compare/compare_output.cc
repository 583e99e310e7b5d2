// The two renderings of a CompareReport: JSON (docs/format.md section 8) and a table for people.
#include <cmath>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "palettize/compare.h"
#include "report/json_text.h"
#include "util/table.h"

namespace palettize {

namespace {

using json = nlohmann::ordered_json;

// JSON has no infinity: an SNR that is not finite is null (sse tells which).
json Snr(double db) { return std::isfinite(db) ? json(db) : json(nullptr); }

std::string SnrText(double db) {
  if (std::isinf(db)) return db > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", db);
  return buf;
}

std::string ErrorText(double e) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", e);
  return buf;
}

bool Compared(const WeightComparison& c) {
  return c.state != WeightState::kMissing && c.state != WeightState::kMismatch;
}

// A value that may be NaN (an output holding NaN): null, as for an infinite SNR.
json Finite(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json OutputsJson(const CompareReport& r) {
  json per_sample = json::array(), totals = json::array();
  for (const OutputComparison& c : r.outputs)
    per_sample.push_back({{"name", c.name},
                          {"sample", c.sample},
                          {"dtype", c.dtype},
                          {"shape", c.shape},
                          {"peak", Finite(c.peak)},
                          {"mse", Finite(c.mse)},
                          {"psnr_db", Snr(c.psnr_db)},
                          {"cosine", Finite(c.cosine)},
                          {"max_abs_error", Finite(c.max_abs_error)}});
  for (const OutputTotals& t : r.output_totals)
    totals.push_back({{"name", t.name},
                      {"min_psnr_db", Snr(t.min_psnr_db)},
                      {"mean_cosine", Finite(t.mean_cosine)},
                      {"max_abs_error", Finite(t.max_abs_error)}});
  return {{"samples", r.samples}, {"per_sample", per_sample}, {"totals", totals}};
}

std::string CosineText(double c) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.8f", c);
  return buf;
}

// Per output and sample, then (several samples) a row "all": worst PSNR, mean cosine, largest error.
std::string OutputsTable(const CompareReport& r) {
  std::vector<std::vector<std::string>> rows = {{"output", "sample", "psnr_db", "cosine", "max_abs_error"}};
  for (const OutputTotals& t : r.output_totals) {
    for (const OutputComparison& c : r.outputs)
      if (c.name == t.name)
        rows.push_back(
            {c.name, c.sample, SnrText(c.psnr_db), CosineText(c.cosine), ErrorText(c.max_abs_error)});
    if (r.samples.size() > 1)
      rows.push_back(
          {t.name, "all", SnrText(t.min_psnr_db), CosineText(t.mean_cosine), ErrorText(t.max_abs_error)});
  }
  return "outputs on " + std::to_string(r.samples.size()) + (r.samples.size() == 1 ? " sample" : " samples") +
         " (psnr_db: peak max |original|; all: worst PSNR, mean cosine, max error)\n" +
         FormatTable(rows, "  ");
}

}  // namespace

std::string CompareToJson(const CompareReport& r) {
  json weights = json::array();
  for (const WeightComparison& c : r.weights) {
    weights.push_back(
        {{"program", c.program},
         {"function", c.function},
         {"name", c.name},
         {"dtype", c.dtype},
         {"shape", c.shape},
         {"state", WeightStateName(c.state)},
         {"nbits", c.state == WeightState::kPalettized && c.nbits > 0 ? json(c.nbits) : json(nullptr)},
         {"problem", c.problem},
         {"signal", c.signal},
         {"sse", c.sse},
         {"max_abs_error", c.max_abs_error},
         {"snr_db", Compared(c) ? Snr(c.snr_db) : json(nullptr)}});
  }
  json totals = {{"weights", r.weights.size()},
                 {"palettized", r.palettized},
                 {"constexpr", r.constexpr_other},
                 {"unchanged", r.unchanged},
                 {"missing", r.missing},
                 {"mismatched", r.mismatched},
                 {"signal", r.signal},
                 {"sse", r.sse},
                 {"max_abs_error", r.max_abs_error},
                 {"snr_db", Snr(r.snr_db)},
                 {"min_snr_db", Snr(r.min_snr_db)}};
  json doc = {
      {"original", r.original}, {"compressed", r.compressed}, {"weights", weights}, {"totals", totals}};
  if (!r.samples.empty()) doc["outputs"] = OutputsJson(r);
  return JsonText(doc);
}

std::string CompareToTable(const CompareReport& r) {
  std::set<std::pair<std::string, std::string>> functions;
  for (const WeightComparison& c : r.weights) functions.insert({c.program, c.function});
  std::vector<std::vector<std::string>> rows = {
      {"weight", "dtype", "shape", "snr_db", "max_abs_error", "state"}};
  for (const WeightComparison& c : r.weights) {
    std::string name = c.program.empty() ? "" : c.program + "/";
    if (functions.size() > 1) name += c.function + "/";
    std::string shape;
    for (size_t i = 0; i < c.shape.size(); ++i) shape += (i ? "x" : "") + std::to_string(c.shape[i]);
    std::string state = WeightStateName(c.state);  // last: it may carry a long problem text
    if (c.state == WeightState::kPalettized && c.nbits > 0) state += " " + std::to_string(c.nbits) + "-bit";
    if (!Compared(c)) state += ": " + c.problem;
    rows.push_back({name + c.name, c.dtype, shape, Compared(c) ? SnrText(c.snr_db) : "-",
                    Compared(c) ? ErrorText(c.max_abs_error) : "-", state});
  }
  std::string out = r.original + " -> " + r.compressed + "\n" + FormatTable(rows, "  ");
  out += std::to_string(r.weights.size()) + " weights: " + std::to_string(r.palettized) + " palettized, " +
         std::to_string(r.unchanged) + " unchanged";
  if (r.constexpr_other) out += ", " + std::to_string(r.constexpr_other) + " other constexpr";
  if (r.missing) out += ", " + std::to_string(r.missing) + " missing";
  if (r.mismatched) out += ", " + std::to_string(r.mismatched) + " mismatched";
  out += "; SNR " + SnrText(r.snr_db) + " dB overall, " + SnrText(r.min_snr_db) +
         " dB worst; max abs error " + ErrorText(r.max_abs_error) + "\n";
  if (!r.samples.empty()) out += OutputsTable(r);
  return out;
}

}  // namespace palettize
