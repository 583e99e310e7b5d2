// Plain-text tables for people: columns padded to their widest cell, the last column unpadded.
#pragma once

#include <string>
#include <vector>

namespace palettize {

// Each row on one line, starting with `indent`, cells separated by one space.
std::string FormatTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent);

}  // namespace palettize
