// The shapes the model description allows for a function's inputs: what coremltools writes for
// flexible shapes (RangeDim: a default shape and a range per dimension; EnumeratedShapes: a
// default and a list), where the function's own declaration leaves those dimensions unknown. The
// function's declaration stays the authority for dtype, rank and fixed dimensions; the description
// only fills in the unknown ones (a generated input takes the default shape) and narrows what an
// input file may give. A model without a description, or one that does not describe an input,
// leaves it as the function declares it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mil/weights.h"
#include "package/package.h"

namespace palettize::eval {

struct DescribedShape {
  std::vector<int64_t> default_shape;
  std::vector<std::vector<int64_t>> enumerated;     // the shapes allowed; empty: not enumerated
  std::vector<std::pair<int64_t, int64_t>> ranges;  // per dimension [low, high], high -1: unbounded
};

// The described shapes of `function`'s multi-array inputs, by name: the description's
// `functions` entry of that name, or for a model that lists no functions, its `input` (which
// describes the default function, main). An input whose description does not have the rank the
// function declares, or contradicts a dimension it fixes, is left out. A description that does
// not parse is an InvalidInput naming the model file.
Status DescribedShapes(const Package& package, const std::string& function,
                       const std::vector<std::pair<std::string, const mil::ValueType*>>& declared,
                       std::map<std::string, DescribedShape>* out);

// `declared` with its unknown dimensions taken from the described default shape.
mil::ValueType WithDefaultShape(const mil::ValueType& declared, const DescribedShape& described);

// Whether `shape` is one the description allows; `allowed` gets them as text ("[1, 3] or
// [1, 5]", "[1, 2..8]", "[1, 2..]").
bool ShapeAllowed(const DescribedShape& described, const std::vector<int64_t>& shape, std::string* allowed);

}  // namespace palettize::eval
