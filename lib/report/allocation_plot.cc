#include "report/allocation_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "report/allocation_points.h"
#include "report/json_text.h"
#include "util/staging.h"

namespace palettize {

namespace {

constexpr int kWidth = 1000, kHeight = 700;
// Panels: [left, right] x [top, bottom] in SVG pixels; legends sit right of them.
constexpr double kLeft = 90, kRight = 740, kCurveTop = 70, kCurveBottom = 390, kBarsTop = 460,
                 kBarsBottom = 630, kLegendX = 760;
constexpr int kUniformBits[] = {2, 3, 4, 6, 8};
constexpr const char* kFrontierColour = "#1f77b4";
constexpr const char* kUniformColour = "#ff7f0e";
constexpr const char* kChosenColour = "#d62728";
constexpr const char* kBudgetColour = "#555555";

const char* BarColour(int nbits) {
  switch (nbits) {
    case 1: return "#9467bd";
    case 2: return "#8c564b";
    case 3: return "#e377c2";
    case 4: return "#2ca02c";
    case 6: return "#17becf";
    case 8: return "#1f77b4";
    default: return "#9a9a9a";  // kept uncompressed
  }
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// Text for XML character data and attributes: valid UTF-8 (report/json_text.h's \xHH for other
// bytes), markup characters as entities, and the characters XML 1.0 forbids (C0 controls other
// than tab and newlines, U+FFFE, U+FFFF) as \xHH / \uHHHH text.
std::string Xml(const std::string& raw) {
  const std::string s = EscapeInvalidUtf8(raw);
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else if (c == '"') {
      out += "&quot;";
    } else if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    } else if (c == 0xEF && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xBF &&
               (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xBE) {
      out += static_cast<unsigned char>(s[i + 2]) == 0xBE ? "\\ufffe" : "\\uffff";
      i += 2;
    } else {
      out += char(c);
    }
  }
  return out;
}

// A step of 1, 2 or 5 times a power of ten giving about `target` ticks over `range`.
double NiceStep(double range, int target) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
}

class Svg {
 public:
  void Add(const std::string& element) { out_ += "  " + element + "\n"; }

  void Text(double x, double y, const std::string& text, const std::string& attrs = "") {
    Add("<text x=\"" + Num(x) + "\" y=\"" + Num(y) + "\"" + (attrs.empty() ? "" : " " + attrs) + ">" +
        Xml(text) + "</text>");
  }

  void Line(double x1, double y1, double x2, double y2, const std::string& attrs) {
    Add("<line x1=\"" + Num(x1) + "\" y1=\"" + Num(y1) + "\" x2=\"" + Num(x2) + "\" y2=\"" + Num(y2) + "\" " +
        attrs + "/>");
  }

  std::string Finish() const {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" +
           std::to_string(kWidth) + "\" height=\"" + std::to_string(kHeight) + "\" viewBox=\"0 0 " +
           std::to_string(kWidth) + " " + std::to_string(kHeight) +
           "\" font-family=\"sans-serif\" font-size=\"13\">\n" + out_ + "</svg>\n";
  }

 private:
  std::string out_;
};

void Frame(Svg& svg, double top, double bottom, const char* id) {
  svg.Add("<rect class=\"plot-area\" id=\"" + std::string(id) + "\" x=\"" + Num(kLeft) + "\" y=\"" +
          Num(top) + "\" width=\"" + Num(kRight - kLeft) + "\" height=\"" + Num(bottom - top) +
          "\" fill=\"#fbfbfb\" stroke=\"#333333\"/>");
}

// The x (bits per weight) of the budget line, when the objective is a size.
std::optional<double> BudgetBpw(const Allocation& a, uint64_t elements) {
  if (a.objective == AllocationObjective::kTargetBpw) return a.budget;
  if (a.objective == AllocationObjective::kTargetSize && elements > 0)
    return 8.0 * a.budget / double(elements);
  return std::nullopt;
}

std::string Title(const Allocation& a, const CurvePoint& chosen) {
  const std::string flag = a.objective == AllocationObjective::kTargetBpw    ? "--target-bpw "
                           : a.objective == AllocationObjective::kTargetSize ? "--target-size "
                           : a.objective == AllocationObjective::kMinSnr     ? "--min-snr "
                                                                             : "--min-output-psnr ";
  return "Bit allocation, " + flag + Fmt("%.10g", a.budget) + ": " + std::to_string(a.weights.size()) +
         " weights at " + Fmt("%.3f", chosen.bpw) + " bits per weight";
}

struct Scale {
  double x0, x1;  // bits per weight at the panel's left and right edges
  double lo, hi;  // log10 of the cost at the bottom and top edges
  double X(double bpw) const { return kLeft + (bpw - x0) / (x1 - x0) * (kRight - kLeft); }
  double Y(double cost) const {
    const double l = cost > 0 ? std::max(lo, std::log10(cost)) : lo;
    return kCurveBottom - (l - lo) / (hi - lo) * (kCurveBottom - kCurveTop);
  }
};

void CurvePanel(Svg& svg, const Allocation& a, const CurvePoint& chosen) {
  uint64_t elements = 0;
  for (const WeightAllocation& w : a.weights) elements += w.elements;
  const std::vector<CurvePoint> frontier = LagrangianFrontier(a);
  std::vector<std::pair<int, CurvePoint>> uniform;
  for (int nbits : kUniformBits)
    if (std::optional<CurvePoint> p = UniformPoint(a, nbits)) uniform.emplace_back(nbits, *p);
  const std::optional<double> budget = BudgetBpw(a, elements);

  // x spans the smallest allocation to the largest marked point; the frontier beyond (towards
  // keeping weights uncompressed) is cut, so the interesting range is not squeezed.
  double x0 = frontier.empty() ? chosen.bpw : frontier.front().bpw, x1 = chosen.bpw;
  x0 = std::min(x0, chosen.bpw);
  for (const auto& [nbits, p] : uniform) x0 = std::min(x0, p.bpw), x1 = std::max(x1, p.bpw);
  if (budget) x0 = std::min(x0, *budget), x1 = std::max(x1, *budget);
  if (x1 - x0 < 1e-9) x0 -= 0.5, x1 += 0.5;
  const double pad = (x1 - x0) * 0.05;
  Scale s{x0 - pad, x1 + pad, 0, 0};
  std::vector<CurvePoint> shown;
  for (const CurvePoint& p : frontier)
    if (p.bpw <= s.x1) shown.push_back(p);

  double min_cost = INFINITY, max_cost = 0;
  auto extend = [&](const CurvePoint& p) {
    if (p.cost > 0) min_cost = std::min(min_cost, p.cost), max_cost = std::max(max_cost, p.cost);
  };
  for (const CurvePoint& p : shown) extend(p);
  for (const auto& [nbits, p] : uniform) extend(p);
  extend(chosen);
  if (max_cost > 0) {
    s.lo = std::floor(std::log10(min_cost));
    s.hi = std::ceil(std::log10(max_cost));
  } else {
    s.lo = -1, s.hi = 0;
  }
  if (s.hi <= s.lo) s.hi = s.lo + 1;

  Frame(svg, kCurveTop, kCurveBottom, "curve-area");
  const double xstep = NiceStep(s.x1 - s.x0, 8);
  for (double t = std::ceil(s.x0 / xstep) * xstep; t <= s.x1 + 1e-9; t += xstep) {
    svg.Line(s.X(t), kCurveBottom, s.X(t), kCurveBottom + 5, "class=\"tick\" stroke=\"#333333\"");
    svg.Text(s.X(t), kCurveBottom + 19, Fmt("%g", std::fabs(t) < xstep * 1e-6 ? 0 : t),
             "class=\"tick-label\" text-anchor=\"middle\"");
  }
  const int decades = int(s.hi - s.lo);
  const int every = std::max(1, (decades + 7) / 8);
  for (int d = int(s.lo); d <= int(s.hi); d += every) {
    const double y = s.Y(std::pow(10.0, d));
    svg.Line(kLeft - 5, y, kLeft, y, "class=\"tick\" stroke=\"#333333\"");
    svg.Line(kLeft, y, kRight, y, "class=\"grid\" stroke=\"#e4e4e4\"");
    svg.Text(kLeft - 8, y + 4, "1e" + std::to_string(d), "class=\"tick-label\" text-anchor=\"end\"");
  }
  svg.Text((kLeft + kRight) / 2, kCurveBottom + 38,
           "bits per weight (allocated weights, tables and scales included)",
           "class=\"axis-label\" text-anchor=\"middle\"");
  const std::string cost_name = a.cost == AllocationCost::kSse        ? "SSE"
                                : a.cost == AllocationCost::kRelative ? "SSE / mean square"
                                                                      : "sensitivity-weighted SSE";
  svg.Text(24, (kCurveTop + kCurveBottom) / 2, "total cost: " + cost_name + " (log scale)",
           "class=\"axis-label\" text-anchor=\"middle\" transform=\"rotate(-90 24 " +
               Num((kCurveTop + kCurveBottom) / 2) + ")\"");

  if (budget)
    svg.Line(s.X(*budget), kCurveTop, s.X(*budget), kCurveBottom,
             "class=\"budget\" stroke=\"" + std::string(kBudgetColour) + "\" stroke-dasharray=\"6 4\"");
  std::string points;
  for (const CurvePoint& p : shown)
    points += (points.empty() ? "" : " ") + Num(s.X(p.bpw)) + "," + Num(s.Y(p.cost));
  if (!shown.empty())
    svg.Add("<polyline class=\"frontier\" points=\"" + points + "\" fill=\"none\" stroke=\"" +
            kFrontierColour + "\" stroke-width=\"2\"/>");
  for (const auto& [nbits, p] : uniform) {
    svg.Add("<circle class=\"uniform\" data-nbits=\"" + std::to_string(nbits) + "\" cx=\"" + Num(s.X(p.bpw)) +
            "\" cy=\"" + Num(s.Y(p.cost)) + "\" r=\"6\" fill=\"" + kUniformColour + "\"/>");
    svg.Text(s.X(p.bpw) + 8, s.Y(p.cost) - 8, std::to_string(nbits) + "-bit", "class=\"point-label\"");
  }
  svg.Add("<circle class=\"chosen\" cx=\"" + Num(s.X(chosen.bpw)) + "\" cy=\"" + Num(s.Y(chosen.cost)) +
          "\" r=\"8\" fill=\"" + kChosenColour + "\" stroke=\"#000000\"/>");

  // Legend.
  double y = kCurveTop + 10;
  auto entry = [&](const std::string& mark, const std::string& label) {
    svg.Add(mark);
    svg.Text(kLegendX + 26, y + 4, label, "class=\"legend\"");
    y += 24;
  };
  entry("<line x1=\"" + Num(kLegendX) + "\" y1=\"" + Num(y) + "\" x2=\"" + Num(kLegendX + 18) + "\" y2=\"" +
            Num(y) + "\" stroke=\"" + kFrontierColour + "\" stroke-width=\"2\"/>",
        "Lagrangian frontier");
  entry("<circle cx=\"" + Num(kLegendX + 9) + "\" cy=\"" + Num(y) + "\" r=\"6\" fill=\"" + kUniformColour +
            "\"/>",
        "uniform nbits");
  entry("<circle cx=\"" + Num(kLegendX + 9) + "\" cy=\"" + Num(y) + "\" r=\"7\" fill=\"" + kChosenColour +
            "\" stroke=\"#000000\"/>",
        "this allocation");
  if (budget)
    entry("<line x1=\"" + Num(kLegendX) + "\" y1=\"" + Num(y) + "\" x2=\"" + Num(kLegendX + 18) + "\" y2=\"" +
              Num(y) + "\" stroke=\"" + kBudgetColour + "\" stroke-dasharray=\"6 4\"/>",
          "budget");
  svg.Text(kLegendX, y + 10, "gap to optimum: " + Fmt("%.4g", a.gap), "class=\"legend\"");
}

void BarsPanel(Svg& svg, const Allocation& a) {
  Frame(svg, kBarsTop, kBarsBottom, "bars-area");
  auto y_of = [](double bits) { return kBarsBottom - bits / 8.0 * (kBarsBottom - kBarsTop); };
  for (int t : {0, 2, 4, 6, 8}) {
    svg.Line(kLeft - 5, y_of(t), kLeft, y_of(t), "class=\"tick\" stroke=\"#333333\"");
    svg.Text(kLeft - 8, y_of(t) + 4, std::to_string(t), "class=\"tick-label\" text-anchor=\"end\"");
  }
  svg.Text(24, (kBarsTop + kBarsBottom) / 2, "nbits",
           "class=\"axis-label\" text-anchor=\"middle\" transform=\"rotate(-90 24 " +
               Num((kBarsTop + kBarsBottom) / 2) + ")\"");
  const size_t n = a.weights.size();
  svg.Text((kLeft + kRight) / 2, kBarsBottom + 38, "weights in model order (" + std::to_string(n) + ")",
           "class=\"axis-label\" text-anchor=\"middle\"");
  const double slot = n > 0 ? (kRight - kLeft) / double(n) : 0;
  const double gap = slot > 4 ? slot * 0.15 : 0;
  bool used[9] = {};
  for (size_t i = 0; i < n; ++i) {
    const WeightAllocation& w = a.weights[i];
    const bool valid = w.chosen >= 0 && size_t(w.chosen) < w.candidates.size();
    const int nbits = valid ? w.candidates[size_t(w.chosen)].nbits : 0;
    if (valid) used[nbits >= 0 && nbits <= 8 ? nbits : 0] = true;
    const double height = (valid ? (nbits == 0 ? 8 : nbits) : 0) / 8.0 * (kBarsBottom - kBarsTop);
    const std::string what = !valid       ? "no candidate chosen"
                             : nbits == 0 ? "kept uncompressed"
                                          : std::to_string(nbits) + "-bit";
    svg.Add("<rect class=\"bar\" data-nbits=\"" + std::to_string(nbits) + "\" x=\"" +
            Num(kLeft + double(i) * slot + gap / 2) + "\" y=\"" + Num(kBarsBottom - height) + "\" width=\"" +
            Num(slot - gap) + "\" height=\"" + Num(height) + "\" fill=\"" + BarColour(nbits) + "\"><title>" +
            Xml(w.name + ": " + what) + "</title></rect>");
  }
  double y = kBarsTop + 10;
  for (int nbits : {1, 2, 3, 4, 6, 8, 0}) {
    if (!used[nbits]) continue;
    svg.Add("<rect x=\"" + Num(kLegendX) + "\" y=\"" + Num(y - 6) + "\" width=\"18\" height=\"12\" fill=\"" +
            BarColour(nbits) + "\"/>");
    svg.Text(kLegendX + 26, y + 4, nbits == 0 ? "kept uncompressed" : std::to_string(nbits) + "-bit",
             "class=\"legend\"");
    y += 20;
  }
}

}  // namespace

std::string AllocationPlotSvg(const Allocation& a) {
  const CurvePoint chosen = ChosenPoint(a);
  Svg svg;
  svg.Add("<rect x=\"0\" y=\"0\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
          std::to_string(kHeight) + "\" fill=\"#ffffff\"/>");
  svg.Text(kWidth / 2.0, 30, Title(a, chosen), "class=\"title\" text-anchor=\"middle\" font-size=\"18\"");
  svg.Text(kWidth / 2.0, 52,
           "size against quality of the allocated weights (lower is better); below, the bits each weight got",
           "class=\"subtitle\" text-anchor=\"middle\" fill=\"#555555\"");
  CurvePanel(svg, a, chosen);
  BarsPanel(svg, a);
  return svg.Finish();
}

Status WriteAllocationPlot(const std::string& path, const Allocation& allocation) {
  StagedOutput staged;
  PALETTIZE_RETURN_IF_ERROR(StageText(path, AllocationPlotSvg(allocation), &staged, "cannot write plot"));
  return CommitStaged({&staged});
}

}  // namespace palettize
