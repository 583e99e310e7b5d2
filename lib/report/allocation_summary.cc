// The allocation's line in a run's summary and plan (palettize/compress.h: CompressSummary).
#include <cmath>
#include <cstdio>
#include <map>

#include "report/report_parts.h"

namespace palettize {

namespace {

std::string Db(double db) {
  if (std::isnan(db)) return "nan";
  if (std::isinf(db)) return db > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", db);
  return buf;
}

// The measured line: "output PSNR on 4 samples x 1 outputs: predicted 31.20 dB (mean 35.10),
// measured 30.95 dB (mean 34.80) on the written model; 6 probes".
std::string AllocationOutputsSummary(const AllocationOutputs& o) {
  std::string out = "  output PSNR on " + std::to_string(o.samples) + " samples x " +
                    std::to_string(o.outputs) + " outputs (worst pair; mean): predicted " +
                    Db(o.predicted_worst_psnr_db) + " dB (" + Db(o.predicted_mean_psnr_db) + ")";
  if (!o.measured_on.empty())
    out += ", measured " + Db(o.measured_worst_psnr_db) + " dB (" + Db(o.measured_mean_psnr_db) +
           ") on the " + (o.measured_on == "written" ? "written model" : "substituted weights");
  if (!o.probes.empty())
    out += "; " + std::to_string(o.probes.size()) + " probes over " + std::to_string(o.path_steps) +
           " allocations";
  return out + "\n";
}

}  // namespace

std::string AllocationSummary(const Allocation& a) {
  char head[160];
  switch (a.objective) {
    case AllocationObjective::kTargetBpw: std::snprintf(head, sizeof head, "%.4g bpw", a.budget); break;
    case AllocationObjective::kTargetSize: std::snprintf(head, sizeof head, "%.0f bytes", a.budget); break;
    case AllocationObjective::kMinSnr: std::snprintf(head, sizeof head, "SNR >= %.4g dB", a.budget); break;
    case AllocationObjective::kMinOutputPsnr:
      std::snprintf(head, sizeof head, "output PSNR >= %.4g dB", a.budget);
      break;
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
                : a.cost == AllocationCost::kOutput    ? "measured output"
                                                       : "SSE",
                a.weights.size(), a.bpw, FormatBytes(a.bytes).c_str(), a.total_cost, gap);
  std::string out = std::string(line) + "  widths: " + (mix.empty() ? "none" : mix) + "\n";
  if (a.outputs) out += AllocationOutputsSummary(*a.outputs);
  return out;
}

}  // namespace palettize
