// Renderings of a BatchReport: the summary JSON (docs/format.md section 7), a line
// per finished model, and the totals.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "palettize/batch.h"
#include "report/json_text.h"
#include "report/report_parts.h"
#include "util/staging.h"

namespace palettize {

namespace {

using json = nlohmann::ordered_json;

const char* ErrorKind(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: break;
    case Status::Code::kInvalidArgument: return "invalid_argument";
    case Status::Code::kInvalidInput: return "invalid_input";
    case Status::Code::kIOError: return "io_error";
  }
  return "";
}

std::string Ratio(uint64_t before, uint64_t after) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", after > 0 ? double(before) / double(after) : 0.0);
  return buf;
}

}  // namespace

std::string BatchErrorText(const BatchResult& r) {
  // Most errors already start with a path inside the input; the others get the input's path.
  const std::string& msg = r.status.message();
  return msg.rfind(r.item.input, 0) == 0 ? msg : r.item.input + ": " + msg;
}

std::string BatchReportToJson(const BatchReport& r, bool with_timings) {
  json models = json::array();
  for (const BatchResult& m : r.models) {
    const bool ok = m.status.ok();
    models.push_back({{"input", m.item.input},
                      {"output", m.item.output},
                      {"status", ok ? "ok" : "failed"},
                      {"error", ok ? json(nullptr) : json(BatchErrorText(m))},
                      {"error_kind", ok ? json(nullptr) : json(ErrorKind(m.status.code()))},
                      {"report", ok ? CompressReportJsonValue(m.report, with_timings) : json(nullptr)}});
  }
  json totals = {{"models", r.models.size()},
                 {"ok", r.ok},
                 {"failed", r.failed},
                 {"bytes_before", r.bytes_before},
                 {"bytes_after", r.bytes_after},
                 {"ratio", r.bytes_after > 0 ? double(r.bytes_before) / double(r.bytes_after) : 0.0}};
  if (with_timings) totals["wall_seconds"] = r.wall_seconds;
  return JsonText(json({{"models", models}, {"totals", totals}}));
}

std::string BatchProgressLine(const BatchResult& r, size_t done, size_t total) {
  const std::string line = "[" + std::to_string(done) + "/" + std::to_string(total) + "] ";
  std::string summary = CompressSummary(r.report);
  summary = summary.substr(0, summary.find('\n'));
  return line + r.item.input + " -> " + r.item.output + ": " + summary + "\n";
}

std::string BatchSummary(const BatchReport& r) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.2f s", r.wall_seconds);
  std::string out = "compressed " + std::to_string(r.ok) + " of " + std::to_string(r.models.size()) +
                    " models: " + FormatBytes(r.bytes_before) + " -> " + FormatBytes(r.bytes_after) + " (" +
                    Ratio(r.bytes_before, r.bytes_after) + ") in " + secs + "\n";
  if (r.failed == 0) return out;
  out += "failed " + std::to_string(r.failed) + " of " + std::to_string(r.models.size()) + " models:\n";
  for (const BatchResult& m : r.models)
    if (!m.status.ok()) out += "  " + BatchErrorText(m) + "\n";
  return out;
}

Status WriteBatchReport(const std::string& path, const BatchReport& report) {
  StagedOutput staged;
  PALETTIZE_RETURN_IF_ERROR(StageText(path, BatchReportToJson(report), &staged));
  return CommitStaged({&staged});
}

}  // namespace palettize
