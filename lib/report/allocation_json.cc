#include "report/allocation_json.h"

#include <cmath>

#include "report/report_parts.h"

namespace palettize {

namespace {

using json = nlohmann::ordered_json;

// JSON has no infinity: as the report's snr_db, a lossless candidate (sse exactly 0, which
// includes the one kept uncompressed) has null.
json SnrJson(double snr_db) { return std::isfinite(snr_db) ? json(snr_db) : json(nullptr); }

// Measured output fidelity: PSNR in dB, null when infinite (the outputs equal) or NaN.
json OutputsJson(const AllocationOutputs& o) {
  json probes = json::array();
  for (const AllocationOutputs::Probe& p : o.probes)
    probes.push_back({{"bytes", p.bytes}, {"worst_psnr_db", SnrJson(p.worst_psnr_db)}, {"passed", p.passed}});
  json out = {
      {"samples", o.samples},
      {"outputs", o.outputs},
      {"predicted_worst_psnr_db", SnrJson(o.predicted_worst_psnr_db)},
      {"predicted_mean_psnr_db", SnrJson(o.predicted_mean_psnr_db)},
      {"measured_on", o.measured_on},
      // Nothing measured (merged costs without the samples): null.
      {"measured_worst_psnr_db", o.measured_on.empty() ? json(nullptr) : SnrJson(o.measured_worst_psnr_db)},
      {"measured_mean_psnr_db", o.measured_on.empty() ? json(nullptr) : SnrJson(o.measured_mean_psnr_db)}};
  if (!o.probes.empty()) {
    out["path_steps"] = o.path_steps;
    out["probes"] = std::move(probes);
  }
  return out;
}

}  // namespace

const char* ObjectiveName(AllocationObjective objective) {
  switch (objective) {
    case AllocationObjective::kTargetBpw: return "target_bpw";
    case AllocationObjective::kTargetSize: return "target_size";
    case AllocationObjective::kMinSnr: return "min_snr";
    case AllocationObjective::kMinOutputPsnr: return "min_output_psnr";
  }
  return "?";
}

const char* CostName(AllocationCost cost) {
  switch (cost) {
    case AllocationCost::kSse: return "sse";
    case AllocationCost::kSensitivity: return "sensitivity";
    case AllocationCost::kRelative: return "relative";
    case AllocationCost::kOutput: return "output";
  }
  return "?";
}

json AllocationJsonValue(const Allocation& a) {
  json weights = json::array();
  for (const WeightAllocation& w : a.weights) {
    json candidates = json::array();
    for (const AllocationCandidate& c : w.candidates)
      candidates.push_back({{"nbits", c.nbits == 0 ? json(nullptr) : json(c.nbits)},
                            {"bytes", c.bytes},
                            {"sse", c.sse},
                            {"cost", c.cost},
                            {"snr_db", SnrJson(c.snr_db)}});
    const bool chosen = w.chosen >= 0 && size_t(w.chosen) < w.candidates.size();
    weights.push_back({{"name", w.name},
                       {"config_key", w.config_key},
                       {"elements", w.elements},
                       {"config", ConfigJson(w.config)},
                       {"chosen", chosen ? json(w.chosen) : json(nullptr)},
                       {"candidates", std::move(candidates)}});
  }
  json out = {{"objective", ObjectiveName(a.objective)},
              {"budget", a.budget},
              {"cost", CostName(a.cost)},
              {"bytes", a.bytes},
              {"elements", a.elements},
              {"bpw", a.bpw},
              {"total_cost", a.total_cost},
              {"gap", a.gap}};
  if (a.outputs) out["outputs"] = OutputsJson(*a.outputs);
  out["weights"] = std::move(weights);
  return out;
}

}  // namespace palettize
