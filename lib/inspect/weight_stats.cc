#include "inspect/weight_stats.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <vector>

#include "MIL.pb.h"

namespace palettize {

namespace {

using MT = CoreML::Specification::MILSpec::DataType;

// Counts distinct values of a sorted-able list, NaNs (already removed) counted by the caller.
uint64_t CountDistinct(std::vector<double>& v) {
  std::sort(v.begin(), v.end());
  return uint64_t(std::unique(v.begin(), v.end()) - v.begin());  // -0.0 == 0.0 merges them
}

}  // namespace

WeightStats ComputeWeightStats(const TensorData& data, const TensorShape& shape) {
  WeightStats s;
  if (shape.elements == 0) return s;
  if (shape.mil_type == MT::STRING) {
    s.unique_values = std::set<std::string>(data.strings.begin(), data.strings.end()).size();
    return s;
  }
  uint64_t near_zero = 0;
  bool any_nan = false;
  std::vector<double> distinct;
  auto account = [&](double x, uint64_t count) {
    if (std::isnan(x)) {
      any_nan = true;
      return;
    }
    if (std::fabs(x) <= 1e-12) near_zero += count;
    distinct.push_back(x);
  };
  if (shape.bits == 16) {
    // 16-bit types: a histogram of bit patterns, then one decode per pattern present.
    std::vector<uint64_t> counts(65536, 0);
    for (uint64_t i = 0; i < shape.elements; ++i)
      ++counts[uint16_t(data.data[2 * i] | data.data[2 * i + 1] << 8)];
    for (uint32_t p = 0; p < 65536; ++p) {
      if (counts[p] == 0) continue;
      uint8_t le[2] = {uint8_t(p), uint8_t(p >> 8)};
      account(ElementAsDouble(le, shape.mil_type, 0), counts[p]);
    }
  } else {
    distinct.reserve(shape.elements);
    for (uint64_t i = 0; i < shape.elements; ++i) account(ElementAsDouble(data.data, shape.mil_type, i), 1);
  }
  s.unique_values = CountDistinct(distinct) + (any_nan ? 1 : 0);
  s.sparsity = double(near_zero) / double(shape.elements);
  return s;
}

}  // namespace palettize
