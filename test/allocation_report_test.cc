// The report's allocation section (report/allocation_json.h), the curve points of the plot
// (report/allocation_points.h, against exhaustive search) and the plot's SVG (report/allocation_plot.h;
// test/oracle/test_allocation_oracle.py parses and renders it).
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "palettize/checkpoint.h"
#include "palettize/compress.h"
#include "report/allocation_plot.h"
#include "report/allocation_points.h"
#include "report/report_parts.h"

using namespace palettize;
using json = nlohmann::json;

namespace {

Allocation Small() {
  Allocation a;
  a.objective = AllocationObjective::kTargetSize;
  a.cost = AllocationCost::kSensitivity;
  a.budget = 1500;
  a.bytes = 1400;
  a.elements = 4096;
  a.bpw = 8.0 * 1400 / 4096;
  a.total_cost = 2.25;
  a.gap = 0.125;
  WeightAllocation w;
  w.name = "layer/w\xff";
  w.config_key = "w";
  w.config.nbits = 6;
  w.elements = 2048;
  w.candidates = {{2, 600, 4.0, 2.0, 12.5}, {4, 1100, 0.5, 0.25, 21.25}, {0, 4096, 0, 0, INFINITY}};
  w.chosen = 0;
  a.weights.push_back(w);
  w.name = "v";
  w.config_key = "v";
  w.candidates = {{4, 800, 0.5, 0.25, 20}, {8, 1300, 0.0, 0.0, INFINITY}, {0, 4096, 0, 0, INFINITY}};
  w.chosen = 0;
  a.weights.push_back(w);
  return a;
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("allocation JSON: the report has the section only when an allocation is set", "[allocation]") {
  CompressReport r;
  r.input = "in.mlpackage";
  const std::string plain = CompressReportToJson(r, false);
  CHECK(json::parse(plain).count("allocation") == 0);
  r.allocation = Small();
  const json j = json::parse(CompressReportToJson(r, false));
  REQUIRE(j.count("allocation") == 1);
  const json& a = j["allocation"];
  CHECK(a["objective"] == "target_size");
  CHECK(a["cost"] == "sensitivity");
  CHECK(a["budget"] == 1500.0);
  CHECK(a["bytes"] == 1400);
  CHECK(a["elements"] == 4096);
  CHECK(a["bpw"] == Approx(8.0 * 1400 / 4096));
  CHECK(a["total_cost"] == 2.25);
  CHECK(a["gap"] == 0.125);
  REQUIRE(a["weights"].size() == 2);
  const json& w = a["weights"][0];
  CHECK(w["name"] == "layer/w\\xff");  // invalid UTF-8 as the report writes it
  CHECK(w["config_key"] == "w");
  CHECK(w["elements"] == 2048);
  CHECK(w["chosen"] == 0);
  CHECK(w["config"]["nbits"] == 6);
  REQUIRE(w["candidates"].size() == 3);
  CHECK(w["candidates"][0] ==
        json({{"nbits", 2}, {"bytes", 600}, {"sse", 4.0}, {"cost", 2.0}, {"snr_db", 12.5}}));
  CHECK(w["candidates"][2]["nbits"].is_null());   // kept uncompressed
  CHECK(w["candidates"][2]["snr_db"].is_null());  // infinite: lossless
  CHECK(a["weights"][1]["candidates"][1]["snr_db"].is_null());
  // Everything before the section is the report without it.
  const std::string with = CompressReportToJson(r, false);
  CHECK(with.substr(0, plain.size() - 3) == plain.substr(0, plain.size() - 3));

  CheckpointReport c;
  CHECK(json::parse(CheckpointReportToJson(c, false)).count("allocation") == 0);
  c.report.allocation = Small();
  const json cj = json::parse(CheckpointReportToJson(c, false));
  CHECK(cj["allocation"] == j["allocation"]);
}

TEST_CASE("allocation points: chosen and uniform points from the curves", "[allocation]") {
  const Allocation a = Small();
  const CurvePoint chosen = ChosenPoint(a);
  CHECK(chosen.bytes == 1400);
  CHECK(chosen.cost == 2.25);
  CHECK(chosen.bpw == 8.0 * 1400 / 4096);
  const std::optional<CurvePoint> four = UniformPoint(a, 4);
  REQUIRE(four);
  CHECK(four->bytes == 1900);
  CHECK(four->cost == 0.5);
  CHECK_FALSE(UniformPoint(a, 2));  // "v" has no 2-bit candidate
  CHECK_FALSE(UniformPoint(a, 3));
  REQUIRE(UniformPoint(a, 0));
  CHECK(UniformPoint(a, 0)->bpw == 16);
  CHECK_FALSE(UniformPoint(Allocation(), 4));
  CHECK(LagrangianFrontier(Allocation()).empty());
}

TEST_CASE("allocation points: every frontier point is optimal for its bytes (exhaustive search)",
          "[allocation]") {
  std::mt19937 rng(14);
  for (int trial = 0; trial < 200; ++trial) {
    Allocation a;
    const int n = 1 + int(rng() % 4);
    for (int i = 0; i < n; ++i) {
      WeightAllocation w;
      w.elements = 64;
      const int k = 1 + int(rng() % 4);
      for (int c = 0; c < k; ++c) {
        // Random curves, with ties and dominated candidates on purpose.
        AllocationCandidate cand;
        cand.nbits = c + 1;
        cand.bytes = 10 + rng() % 40;
        cand.cost = double(rng() % 30);
        w.candidates.push_back(cand);
      }
      a.weights.push_back(w);
    }
    // Every assignment's (bytes, cost).
    std::vector<std::pair<uint64_t, double>> all = {{0, 0.0}};
    for (const WeightAllocation& w : a.weights) {
      std::vector<std::pair<uint64_t, double>> next;
      for (const auto& [b, c] : all)
        for (const AllocationCandidate& cand : w.candidates) next.push_back({b + cand.bytes, c + cand.cost});
      all = std::move(next);
    }
    const std::vector<CurvePoint> frontier = LagrangianFrontier(a);
    REQUIRE_FALSE(frontier.empty());
    uint64_t min_bytes = UINT64_MAX;
    for (const auto& [b, c] : all) min_bytes = std::min(min_bytes, b);
    CHECK(frontier.front().bytes == min_bytes);
    for (size_t p = 0; p < frontier.size(); ++p) {
      INFO("trial " << trial << " point " << p);
      if (p > 0) {
        CHECK(frontier[p].bytes > frontier[p - 1].bytes);
        CHECK(frontier[p].cost < frontier[p - 1].cost);
      }
      bool reached = false;
      double best = INFINITY;
      for (const auto& [b, c] : all) {
        if (b == frontier[p].bytes && c == frontier[p].cost) reached = true;
        if (b <= frontier[p].bytes) best = std::min(best, c);
      }
      CHECK(reached);
      CHECK(best == frontier[p].cost);
      CHECK(frontier[p].bpw == 8.0 * double(frontier[p].bytes) / double(64 * n));
    }
  }
}

TEST_CASE("allocation plot: one bar per weight, the marks, nothing external", "[allocation]") {
  Allocation a = Small();
  a.weights[1].chosen = 2;
  const std::string svg = AllocationPlotSvg(a);
  CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"",
                  0) == 0);
  CHECK(Count(svg, "class=\"bar\"") == 2);
  CHECK(Count(svg, "class=\"bar\" data-nbits=\"0\"") == 1);
  CHECK(Count(svg, "class=\"chosen\"") == 1);
  CHECK(Count(svg, "class=\"uniform\"") == 1);  // only 4-bit: "v" has no 2-bit, neither has 3 or 6
  CHECK(Count(svg, "class=\"budget\"") == 1);
  CHECK(Count(svg, "class=\"frontier\"") == 1);
  CHECK(Count(svg, "<script") == 0);
  CHECK(Count(svg, "href") == 0);
  CHECK(Count(svg, "url(") == 0);
  CHECK(svg.find("layer/w\\xff: 2-bit") != std::string::npos);  // the bar's title, valid UTF-8
  CHECK(svg == AllocationPlotSvg(a));
  a.objective = AllocationObjective::kMinSnr;
  CHECK(Count(AllocationPlotSvg(a), "class=\"budget\"") == 0);
  // No weights at all still draws the frame.
  CHECK(Count(AllocationPlotSvg(Allocation()), "class=\"plot-area\"") == 2);
}

TEST_CASE("allocation summary: the objective, the result and the widths, in the run's summary and plan",
          "[allocation]") {
  Allocation a = Small();
  CHECK(AllocationSummary(a) ==
        "allocation for 1500 bytes (sensitivity cost): 2 weights at 2.7344 bpw, 1.4 KB; total cost 2.25, "
        "within "
        "0.125 of the optimum\n  widths: 2-bit x1, 4-bit x1\n");
  a.objective = AllocationObjective::kTargetBpw;
  a.budget = 3;
  a.cost = AllocationCost::kSse;
  a.gap = 0;
  a.weights[1].chosen = 2;
  CHECK(AllocationSummary(a) ==
        "allocation for 3 bpw (SSE cost): 2 weights at 2.7344 bpw, 1.4 KB; total cost 2.25, optimal\n"
        "  widths: uncompressed x1, 2-bit x1\n");
  a.objective = AllocationObjective::kMinSnr;
  a.budget = 30.5;
  CHECK(AllocationSummary(a).rfind("allocation for SNR >= 30.5 dB (SSE cost)", 0) == 0);

  CompressReport r;
  CHECK(CompressSummary(r).find("allocation") == std::string::npos);
  CHECK(CompressPlanText(r).find("allocation") == std::string::npos);
  r.allocation = a;
  CHECK(CompressSummary(r).find("  allocation for SNR >= 30.5 dB") != std::string::npos);
  CHECK(CompressPlanText(r).find("\nallocation for SNR >= 30.5 dB") != std::string::npos);
  CheckpointReport c;
  c.report.allocation = a;
  CHECK(CheckpointSummary(c).find("  allocation for SNR >= 30.5 dB") != std::string::npos);
  CHECK(CheckpointPlanText(c).find("\nallocation for SNR >= 30.5 dB") != std::string::npos);
}
