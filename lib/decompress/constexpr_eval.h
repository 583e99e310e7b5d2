// Evaluates constexpr chains back to dense values, exactly as coremltools' decompress_weights does:
//   constexpr_lut_to_dense  out[p] = lut[table(p)][indices[p']][p_a % D]   (iOS16: packed bytes)
//   constexpr_blockwise_shift_scale  out = scale * (data - offset), in scale's dtype, each step
//   rounded to it (data first cast to it), scale and offset repeated over their blocks.
// Shared by decompress (folds each chain into a const) and compare (measures a compressed weight
// against its original).
#pragma once

#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mil/weights.h"
#include "package/package.h"

namespace palettize {

struct DenseTensor {
  TensorShape shape;
  std::vector<double> v;  // row-major, each value exactly representable in shape's dtype
};

// constexpr_lut_to_dense and constexpr_blockwise_shift_scale: the ops this file evaluates.
bool IsDecompressible(const mil::Operation& op);

// Indexes every op of `b` (nested blocks included) by its outputs, and collects the names that
// decompressible ops consume (the inner links of chains, and the consts they read).
void IndexProducers(mil::Block& b, std::map<std::string, mil::Operation*>* producers,
                    std::set<std::string>* chain_inputs);

class ConstexprEvaluator {
 public:
  // `producers` indexes the ops of the function holding the chains (IndexProducers); it and
  // `package` must outlive the evaluator.
  ConstexprEvaluator(Package& package, const std::map<std::string, mil::Operation*>& producers)
      : package_(package), producers_(producers) {}

  // The value of decompressible `op`, evaluating the chain that feeds it. Every parameter's
  // presence, dtype, rank and length, and the output shape against the op's declared type, are
  // checked before anything is computed or allocated (docs/format.md section 3). Errors name the
  // model file and the op.
  Status EvalOp(const mil::Operation& op, DenseTensor* out);

  // Checks that every input of `op` bound by name names one of `defined`, the outputs of the ops
  // before it: MIL blocks are in topological order, so an op that reads its own output, or a
  // later op's, is refused rather than left in a package no loader accepts.
  Status CheckDefinedBefore(const mil::Operation& op, const std::set<std::string>& defined);

 private:
  // A parameter of `op`: an attribute (iOS16) or an input bound to a value or to another op.
  // With `present`, a missing parameter is not an error: *present says whether it was found.
  Status Param(const mil::Operation& op, const std::string& name, const std::string& where, DenseTensor* out,
               bool* present = nullptr);
  Status Read(const mil::Value& v, const mil::ValueType& type, const std::string& what, DenseTensor* out);
  Status Fail(const std::string& where, const std::string& msg);
  // Checks parameter `name` of `where`: its dtype is one of `dtypes` and its rank is `rank`
  // (-1: any rank of at least 1).
  Status Expect(const DenseTensor& t, const std::string& where, const std::string& name,
                std::initializer_list<int> dtypes, int rank);
  // Checks the shape an op computes against the type its output declares, before any value is
  // computed: a consumer (and inspect, reading decompress's output) trusts the declared type.
  Status CheckDeclared(const std::string& where, const TensorShape& computed, const TensorShape& declared);
  Status LutToDense(const mil::Operation& op, const std::string& where, const TensorShape& declared,
                    DenseTensor* out);
  Status LutToDenseIOS16(const mil::Operation& op, const std::string& where, const TensorShape& declared,
                         DenseTensor* out);
  Status ShiftScale(const mil::Operation& op, const std::string& where, const TensorShape& declared,
                    DenseTensor* out);

  Package& package_;
  const std::map<std::string, mil::Operation*>& producers_;
  int depth_ = 0;  // ops being evaluated: bounds a chain, and stops one that feeds itself
};

}  // namespace palettize
