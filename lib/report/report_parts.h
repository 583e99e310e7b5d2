// Pieces of the compress report that the batch report (batch_report.cc), the checkpoint report
// and the allocation section reuse.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "palettize/compress.h"

namespace palettize {

// The compress report as a JSON value (docs/format.md section 6), as CompressReportToJson writes it.
nlohmann::ordered_json CompressReportJsonValue(const CompressReport& report, bool with_timings);

// A weight's config as the report writes it: {mode, nbits, granularity, group_size, channel_axis,
// cluster_dim, enable_per_channel_scale, lut_dtype, weight_threshold}.
nlohmann::ordered_json ConfigJson(const PalettizeConfig& config);

// "1.27 MB", "718.0 KB", "672 B".
std::string FormatBytes(uint64_t bytes);

// Two lines for a run's summary: "allocation for 4 bpw (SSE cost): 12 weights at 3.9987 bpw,
// 1.27 MB; total cost 0.0123, optimal" and "  widths: 2-bit x3, 4-bit x8, uncompressed x1".
std::string AllocationSummary(const Allocation& allocation);

// A plan line's timing, ", 0.125 s"; "" unless with_timings.
std::string TimingText(const WeightReport& w, bool with_timings);

}  // namespace palettize
