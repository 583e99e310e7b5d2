// Value statistics of one weight, as get_weights_metadata reports them.
#pragma once

#include <cstdint>

#include "mil/tensor_data.h"
#include "mil/weights.h"

namespace palettize {

struct WeightStats {
  uint64_t unique_values = 0;  // distinct values, with -0 == +0 and all NaNs as one (numpy.unique)
  double sparsity = 0;         // fraction of elements with |x| <= 1e-12
};

WeightStats ComputeWeightStats(const TensorData& data, const TensorShape& shape);

}  // namespace palettize
