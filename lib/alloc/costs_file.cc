#include "alloc/costs_file.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "util/file.h"

namespace palettize {

namespace {

using Json = nlohmann::ordered_json;

// A costs file holds a few numbers per pair; a file far larger than any sweep's is refused before
// it is read.
constexpr uint64_t kMaxCostsBytes = uint64_t(1) << 32;

bool ParseCount(const std::string& s, uint64_t* v) {
  if (s.empty() || s.size() > 18) return false;
  *v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    *v = *v * 10 + uint64_t(c - '0');
  }
  return true;
}

Json ErrorJson(double e) {
  if (std::isnan(e)) return "nan";
  if (std::isinf(e)) return e > 0 ? "inf" : "-inf";
  return e;
}

}  // namespace

Status ParseShard(const std::string& text, const std::string& option, uint64_t* index, uint64_t* count) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos || !ParseCount(text.substr(0, slash), index) ||
      !ParseCount(text.substr(slash + 1), count) || *index >= *count)
    return Status::InvalidArgument(option + ": '" + text + "' is not K/N (slice K of N, 0 <= K < N)");
  return Status::OK();
}

std::string CostsFileToJson(const CostsFile& file) {
  // One line per field and per entry: readable, and a sweep of many pairs stays a few bytes per error.
  std::string out =
      "{\"format\": \"palettize-costs\",\n \"version\": " + std::to_string(kCostsFileVersion) +
      ",\n \"model\": " + Json(file.model).dump() + ",\n \"candidates\": " + Json(file.candidates).dump() +
      ",\n \"samples\": " + Json(file.samples).dump() +
      ",\n \"shard\": {\"index\": " + std::to_string(file.index) +
      ", \"count\": " + std::to_string(file.count) + "},\n \"tasks\": " + std::to_string(file.tasks) +
      ",\n \"sample_count\": " + std::to_string(file.sample_count) +
      ",\n \"output_count\": " + std::to_string(file.output_count) + ",\n \"costs\": [";
  for (size_t k = 0; k < file.entries.size(); ++k) {
    const CostsEntry& e = file.entries[k];
    Json errors = Json::array();
    for (double x : e.errors) errors.push_back(ErrorJson(x));
    const Json entry = {
        {"task", e.task}, {"weight", e.weight}, {"nbits", e.nbits}, {"errors", std::move(errors)}};
    out += (k ? ",\n  " : "\n  ") + entry.dump();
  }
  return out + "]}\n";
}

Status ReadCostsFile(const std::string& path, CostsFile* out) {
  std::string text;
  PALETTIZE_RETURN_IF_ERROR(ReadFileToString(path, &text, kMaxCostsBytes, "a costs file"));
  Json j;
  try {
    j = Json::parse(text);
  } catch (const nlohmann::json::exception&) {
    return Status::InvalidInput(path + ": not a costs file (not JSON)");
  }
  auto bad = [&](const std::string& field, const std::string& what) {
    return Status::InvalidInput(path + ": " + field + ": " + what);
  };
  if (!j.is_object() || !j.contains("format") || j["format"] != "palettize-costs")
    return Status::InvalidInput(path + ": not a costs file (no \"format\": \"palettize-costs\")");
  if (!j.contains("version") || !j["version"].is_number_integer())
    return bad("version", "missing or not an integer");
  if (j["version"] != kCostsFileVersion)
    return bad("version", j["version"].dump() + " is not supported (this palettize reads version " +
                              std::to_string(kCostsFileVersion) + ")");
  for (const char* field : {"model", "candidates", "samples"})
    if (!j.contains(field) || !j[field].is_string()) return bad(field, "missing or not a string");
  out->model = j["model"].get<std::string>();
  out->candidates = j["candidates"].get<std::string>();
  out->samples = j["samples"].get<std::string>();
  auto count = [&](const Json& parent, const std::string& field, const std::string& shown, uint64_t* v) {
    if (!parent.contains(field) || !parent[field].is_number_unsigned())
      return bad(shown, "missing or not a non-negative integer");
    *v = parent[field].get<uint64_t>();
    return Status::OK();
  };
  if (!j.contains("shard") || !j["shard"].is_object()) return bad("shard", "missing or not an object");
  PALETTIZE_RETURN_IF_ERROR(count(j["shard"], "index", "shard.index", &out->index));
  PALETTIZE_RETURN_IF_ERROR(count(j["shard"], "count", "shard.count", &out->count));
  if (out->index >= out->count)
    return bad("shard",
               std::to_string(out->index) + "/" + std::to_string(out->count) + " is not K/N with K < N");
  PALETTIZE_RETURN_IF_ERROR(count(j, "tasks", "tasks", &out->tasks));
  PALETTIZE_RETURN_IF_ERROR(count(j, "sample_count", "sample_count", &out->sample_count));
  PALETTIZE_RETURN_IF_ERROR(count(j, "output_count", "output_count", &out->output_count));
  if (out->output_count != 0 && out->sample_count > UINT32_MAX / out->output_count)
    return bad("sample_count", "too many pairs");
  const uint64_t pairs = out->sample_count * out->output_count;
  if (!j.contains("costs") || !j["costs"].is_array()) return bad("costs", "missing or not an array");
  out->entries.clear();
  for (size_t k = 0; k < j["costs"].size(); ++k) {
    const Json& c = j["costs"][k];
    const std::string at = "costs[" + std::to_string(k) + "]";
    if (!c.is_object()) return bad(at, "not an object");
    CostsEntry e;
    PALETTIZE_RETURN_IF_ERROR(count(c, "task", at + ".task", &e.task));
    if (e.task >= out->tasks || e.task % out->count != out->index)
      return bad(at + ".task", std::to_string(e.task) + " is not a task of slice " +
                                   std::to_string(out->index) + "/" + std::to_string(out->count));
    if (!out->entries.empty() && e.task <= out->entries.back().task)
      return bad(at + ".task", "not after the previous entry's");
    if (!c.contains("weight") || !c["weight"].is_string())
      return bad(at + ".weight", "missing or not a string");
    e.weight = c["weight"].get<std::string>();
    if (!c.contains("nbits") || !c["nbits"].is_number_integer())
      return bad(at + ".nbits", "missing or not an integer");
    e.nbits = c["nbits"].get<int>();
    if (!c.contains("errors") || !c["errors"].is_array() || c["errors"].size() != pairs)
      return bad(at + ".errors", "missing or not an array of " + std::to_string(pairs) + " errors");
    for (const Json& x : c["errors"]) {
      if (x.is_number()) {
        e.errors.push_back(x.get<double>());
      } else if (x == "nan" || x == "inf" || x == "-inf") {
        e.errors.push_back(x == "nan"   ? std::numeric_limits<double>::quiet_NaN()
                           : x == "inf" ? std::numeric_limits<double>::infinity()
                                        : -std::numeric_limits<double>::infinity());
      } else {
        return bad(at + ".errors", "an error is neither a number nor \"nan\", \"inf\" or \"-inf\"");
      }
    }
    out->entries.push_back(std::move(e));
  }
  // Every task of the slice once: tasks K, K+N, K+2N, ... below `tasks`.
  const uint64_t expected =
      out->tasks > out->index ? (out->tasks - out->index + out->count - 1) / out->count : 0;
  if (out->entries.size() != expected)
    return bad("costs", std::to_string(out->entries.size()) + " entries; slice " +
                            std::to_string(out->index) + "/" + std::to_string(out->count) + " of " +
                            std::to_string(out->tasks) + " tasks has " + std::to_string(expected));
  return Status::OK();
}

}  // namespace palettize
