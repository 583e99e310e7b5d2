// The allocation's line in a run's summary and plan (palettize/compress.h: CompressSummary).
#include <cstdio>
#include <map>

#include "report/report_parts.h"

namespace palettize {

std::string AllocationSummary(const Allocation& a) {
  char head[160];
  switch (a.objective) {
    case AllocationObjective::kTargetBpw: std::snprintf(head, sizeof head, "%.4g bpw", a.budget); break;
    case AllocationObjective::kTargetSize: std::snprintf(head, sizeof head, "%.0f bytes", a.budget); break;
    case AllocationObjective::kMinSnr: std::snprintf(head, sizeof head, "SNR >= %.4g dB", a.budget); break;
  }
  std::map<int, size_t> widths;  // nbits -> weights; 0: kept uncompressed
  for (const WeightAllocation& w : a.weights)
    if (w.chosen >= 0 && size_t(w.chosen) < w.candidates.size())
      ++widths[w.candidates[size_t(w.chosen)].nbits];
  std::string mix;
  for (const auto& [nbits, n] : widths)
    mix += (mix.empty() ? "" : ", ") +
           (nbits ? std::to_string(nbits) + "-bit" : std::string("uncompressed")) + " x" + std::to_string(n);
  char gap[64] = "optimal";
  if (a.gap != 0) std::snprintf(gap, sizeof gap, "within %.3g of the optimum", a.gap);
  char line[512];
  std::snprintf(line, sizeof line,
                "allocation for %s (%s cost): %zu weights at %.4f bpw, %s; total cost %.6g, %s\n", head,
                a.cost == AllocationCost::kSensitivity ? "sensitivity"
                : a.cost == AllocationCost::kRelative  ? "relative"
                                                       : "SSE",
                a.weights.size(), a.bpw, FormatBytes(a.bytes).c_str(), a.total_cost, gap);
  return std::string(line) + "  widths: " + (mix.empty() ? "none" : mix) + "\n";
}

}  // namespace palettize
