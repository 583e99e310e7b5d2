#include "util/table.h"

#include <algorithm>

namespace palettize {

std::string FormatTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t c = 0; c + 1 < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line = indent;
    for (size_t c = 0; c < r.size(); ++c) {
      if (c) line += " ";
      line += r[c];
      if (c + 1 < r.size()) line += std::string(width[c] - r[c].size(), ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace palettize
