// allocation_outputs ALLOCATION.json [--config BASE.yaml] [--torch] [--yaml OUT.yaml] [--svg OUT.svg]
//                    [--report OUT.json]
// Reads an allocation in the report's `allocation` section form (docs/format.md section 6) and
// writes what the library makes of it: the --emit-config YAML over the base config (coremltools'
// schema, or the Torch one with --torch), the --plot SVG, and a report holding the section. For
// test/oracle/test_allocation_oracle.py, which checks them with coremltools, Python's XML parser
// and headless Chromium.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "config/allocation_config.h"
#include "palettize/compress.h"
#include "palettize/overrides.h"
#include "report/allocation_json.h"
#include "report/allocation_plot.h"
#include "util/staging.h"

using namespace palettize;
using json = nlohmann::json;

namespace {

// A name the report writes, read back by the library's own parser; a name it does not know throws,
// as a malformed JSON field does.
void Parsed(const Status& st) {
  if (!st.ok()) throw std::invalid_argument(st.message());
}

PalettizeConfig ConfigFrom(const json& j) {
  PalettizeConfig c;
  Parsed(ParseMode(j.at("mode"), &c.mode));
  c.nbits = j.at("nbits").is_null() ? 0 : j.at("nbits").get<int>();
  Parsed(ParseGranularity(j.at("granularity"), &c.granularity));
  c.group_size = j.at("group_size");
  if (!j.at("channel_axis").is_null()) c.channel_axis = j.at("channel_axis").get<int64_t>();
  c.cluster_dim = j.at("cluster_dim");
  c.enable_per_channel_scale = j.at("enable_per_channel_scale");
  const json& lut = j.at("lut_dtype");
  c.lut_dtype = LutDType::kFloat;
  if (!lut.is_null()) Parsed(ParseLutDType(lut, &c.lut_dtype));
  c.weight_threshold = j.at("weight_threshold");
  return c;
}

// The enum value whose name (as `name_of` writes it in the report) is `text`.
template <typename E>
E FromName(const std::string& text, std::initializer_list<E> values, const char* (*name_of)(E)) {
  for (E v : values)
    if (text == name_of(v)) return v;
  throw std::invalid_argument("'" + text + "' is not a name the report writes");
}

Allocation AllocationFrom(const json& j) {
  Allocation a;
  a.objective = FromName(
      j.at("objective").get<std::string>(),
      {AllocationObjective::kTargetBpw, AllocationObjective::kTargetSize, AllocationObjective::kMinSnr},
      ObjectiveName);
  a.cost =
      FromName(j.at("cost").get<std::string>(),
               {AllocationCost::kSse, AllocationCost::kSensitivity, AllocationCost::kRelative}, CostName);
  a.budget = j.at("budget");
  a.bytes = j.at("bytes");
  a.elements = j.at("elements");
  a.bpw = j.at("bpw");
  a.total_cost = j.at("total_cost");
  a.gap = j.at("gap");
  for (const json& jw : j.at("weights")) {
    WeightAllocation w;
    w.name = jw.at("name");
    w.config_key = jw.at("config_key");
    w.elements = jw.at("elements");
    w.config = ConfigFrom(jw.at("config"));
    w.chosen = jw.at("chosen").is_null() ? -1 : jw.at("chosen").get<int>();
    for (const json& jc : jw.at("candidates")) {
      AllocationCandidate c;
      c.nbits = jc.at("nbits").is_null() ? 0 : jc.at("nbits").get<int>();
      c.bytes = jc.at("bytes");
      c.sse = jc.at("sse");
      c.cost = jc.at("cost");
      c.snr_db = jc.at("snr_db").is_null() ? INFINITY : jc.at("snr_db").get<double>();
      w.candidates.push_back(c);
    }
    a.weights.push_back(std::move(w));
  }
  return a;
}

int Fail(const Status& st) {
  std::fprintf(stderr, "allocation_outputs: %s\n", st.message().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: allocation_outputs ALLOCATION.json [--config BASE.yaml] [--torch] "
                 "[--yaml OUT] [--svg OUT] [--report OUT]\n");
    return 2;
  }
  std::string config_path, yaml_path, svg_path, report_path;
  bool torch = false;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--torch") {
      torch = true;
    } else if (i + 1 < argc &&
               (arg == "--config" || arg == "--yaml" || arg == "--svg" || arg == "--report")) {
      (arg == "--config" ? config_path
       : arg == "--yaml" ? yaml_path
       : arg == "--svg"  ? svg_path
                         : report_path) = argv[++i];
    } else {
      std::fprintf(stderr, "allocation_outputs: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  std::ifstream in(argv[1]);
  std::stringstream text;
  text << in.rdbuf();
  Allocation allocation;
  try {
    allocation = AllocationFrom(json::parse(text.str()));
  } catch (const std::exception& e) {  // json::exception, or a name Parsed or FromName rejects
    std::fprintf(stderr, "allocation_outputs: %s: %s\n", argv[1], e.what());
    return 1;
  }
  OptimizationConfig base;
  if (!config_path.empty())
    if (Status st = ReadConfigFile(config_path, torch, &base); !st.ok()) return Fail(st);
  if (!yaml_path.empty())
    if (Status st = WriteAllocationConfig(yaml_path, allocation, base,
                                          torch ? ConfigSchema::kTorch : ConfigSchema::kCoreml);
        !st.ok())
      return Fail(st);
  if (!svg_path.empty())
    if (Status st = WriteAllocationPlot(svg_path, allocation); !st.ok()) return Fail(st);
  if (!report_path.empty()) {
    CompressReport report;
    report.allocation = allocation;
    StagedOutput staged;
    Status st = StageText(report_path, CompressReportToJson(report, false), &staged);
    if (st.ok()) st = CommitStaged({&staged});
    if (!st.ok()) return Fail(st);
  }
  return 0;
}
