#include "report/allocation_json.h"

#include <cmath>

#include "report/report_parts.h"

namespace palettize {

namespace {

using json = nlohmann::ordered_json;

// JSON has no infinity: as the report's snr_db, a lossless candidate (sse exactly 0, which
// includes the one kept uncompressed) has null.
json SnrJson(double snr_db) { return std::isfinite(snr_db) ? json(snr_db) : json(nullptr); }

}  // namespace

const char* ObjectiveName(AllocationObjective objective) {
  switch (objective) {
    case AllocationObjective::kTargetBpw: return "target_bpw";
    case AllocationObjective::kTargetSize: return "target_size";
    case AllocationObjective::kMinSnr: return "min_snr";
  }
  return "?";
}

const char* CostName(AllocationCost cost) {
  switch (cost) {
    case AllocationCost::kSse: return "sse";
    case AllocationCost::kSensitivity: return "sensitivity";
    case AllocationCost::kRelative: return "relative";
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
  return {{"objective", ObjectiveName(a.objective)},
          {"budget", a.budget},
          {"cost", CostName(a.cost)},
          {"bytes", a.bytes},
          {"elements", a.elements},
          {"bpw", a.bpw},
          {"total_cost", a.total_cost},
          {"gap", a.gap},
          {"weights", std::move(weights)}};
}

}  // namespace palettize
