// One in-memory tensor through the checkpoint's plan and the palettizer: palettize/tensor.h.
// The steps are CompressCheckpoint's for one tensor (checkpoint.cc and the spine): plan with the
// module rule's PlanInput, palettize from the raw bytes, keep it as it is when the packed form
// would not be smaller, and encode the decoded values in the tensor's dtype.
#include "palettize/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "MIL.pb.h"
#include "checkpoint/checkpoint_plan.h"
#include "encode/packed_tensor.h"
#include "palettizer/weight_palettizer.h"
#include "plan/plan.h"
#include "safetensors/safetensors.h"
#include "sensitivity/sensitivity.h"
#include "util/guard.h"
#include "util/pow2.h"

namespace palettize {

namespace {

const std::vector<int> kAllNbits = {1, 2, 3, 4, 6, 8};  // as a checkpoint: no target restricts them

bool FloatDType(const std::string& name, SafeDType* dtype, int* mil_type) {
  static const std::map<std::string, std::pair<SafeDType, int>> kTypes = {
      {"F16", {SafeDType::kF16, mil::DataType::FLOAT16}},
      {"BF16", {SafeDType::kBF16, mil::DataType::BFLOAT16}},
      {"F32", {SafeDType::kF32, mil::DataType::FLOAT32}},
      {"F64", {SafeDType::kF64, mil::DataType::FLOAT64}},
  };
  const auto it = kTypes.find(name);
  if (it == kTypes.end()) return false;
  *dtype = it->second.first;
  *mil_type = it->second.second;
  return true;
}

// The rank the module rule gives each type (checkpoint_plan.h), or 0 for an unknown type.
size_t ModuleRank(const std::string& type) {
  if (type == "Linear" || type == "Embedding") return 2;
  if (type == "Conv1d") return 3;
  if (type == "Conv2d") return 4;
  return 0;
}

// The sensitivities as the file-backed ElementWeights holds them (sensitivity.h): checked finite
// and >= 0, with their maximum and smallest positive value. `view` must outlive `out`.
Status SensitivityWeights(const TensorInput& in, uint64_t elements, SafeTensor* view, ElementWeights* out) {
  double max = 0, min_positive = INFINITY;
  for (uint64_t i = 0; i < elements; ++i) {
    const double v = in.sensitivity[i];
    if (!std::isfinite(v) || v < 0) {
      char text[32];
      std::snprintf(text, sizeof(text), "%.9g", v);
      return Status::InvalidArgument(in.name + ": sensitivity element " + std::to_string(i) + " is " + text +
                                     "; sensitivities must be finite and >= 0");
    }
    max = std::max(max, v);
    if (v > 0) min_positive = std::min(min_positive, v);
  }
  view->name = in.name;
  view->dtype = SafeDType::kF32;
  view->shape = in.shape;
  view->elements = elements;
  view->data = reinterpret_cast<const uint8_t*>(in.sensitivity);
  view->bytes = elements * sizeof(float);
  out->tensor = view;
  out->normalize = in.sensitivity_normalize;
  out->max = max;
  out->min_positive = std::isinf(min_positive) ? 0 : min_positive;
  out->exponent = in.sensitivity_normalize ? 0 : FarExponent(max);
  return Status::OK();
}

Status PalettizeTensorUnguarded(const TensorInput& in, const PalettizeConfig& config, TensorOutput* out) {
  *out = TensorOutput();
  SafeTensor t;
  int mil_type = 0;
  if (!FloatDType(in.dtype, &t.dtype, &mil_type))
    return Status::InvalidArgument(in.name + ": dtype '" + in.dtype + "' is not one of F16, BF16, F32, F64");
  const size_t rank = ModuleRank(in.module_type);
  if (rank == 0)
    return Status::InvalidArgument(in.name + ": module type '" + in.module_type +
                                   "' is not one of Linear, Conv1d, Conv2d, Embedding");
  if (in.shape.size() != rank)
    return Status::InvalidArgument(in.name + ": a " + in.module_type + " weight has rank " +
                                   std::to_string(rank) + ", not " + std::to_string(in.shape.size()));
  if (!in.data) return Status::InvalidArgument(in.name + ": no data");
  PALETTIZE_RETURN_IF_ERROR(ValidatePalettizeConfig(config, in.name));
  t.name = in.name;
  t.shape = in.shape;
  for (uint64_t d : in.shape) t.elements *= d;
  t.bytes = t.elements * SafeDTypeSize(t.dtype);
  t.data = static_cast<const uint8_t*>(in.data);

  const size_t dot = in.name.rfind('.');
  const std::string module = dot == std::string::npos ? in.name : in.name.substr(0, dot);
  OptimizationConfig one;
  one.global_config = config;
  std::vector<WeightPlan> plans;
  PALETTIZE_RETURN_IF_ERROR(PlanWeights({CheckpointPlanInput(t, module, in.module_type)}, one, &plans));
  const WeightPlan& plan = plans[0];
  if (!plan.palettize) {
    out->reason = plan.reason;
    return Status::OK();
  }
  TensorShape shape;
  shape.mil_type = mil_type;
  shape.dims = t.shape;
  shape.elements = t.elements;
  shape.bits = int(SafeDTypeSize(t.dtype) * 8);

  SafeTensor sens_view;
  ElementWeights sens;
  if (in.sensitivity) PALETTIZE_RETURN_IF_ERROR(SensitivityWeights(in, t.elements, &sens_view, &sens));
  PalettizedWeight p;
  if (!PalettizeWeightRaw(t.data, shape, plan, kAllNbits, /*keep_decoded=*/true, &p, &out->reason,
                          in.sensitivity ? &sens : nullptr))
    return Status::OK();
  const uint64_t packed = PackedTensorBytes(t.dtype, shape, plan, p);
  if (packed >= t.bytes) {  // the spine's rule: palettizing must make it smaller
    out->reason = "palettized it would take " + std::to_string(packed) + " bytes, not less than its " +
                  std::to_string(t.bytes);
    return Status::OK();
  }
  EncodeFloats(t.dtype, p.decoded.data(), p.decoded.size(), &out->decoded);
  out->palettized = true;
  out->nbits = p.nbits;
  out->tables = p.tables;
  out->snr_db = p.snr_db;
  return Status::OK();
}

}  // namespace

Status PalettizeTensor(const TensorInput& in, const PalettizeConfig& config, TensorOutput* out) {
  return Guarded(in.name, [&] { return PalettizeTensorUnguarded(in, config, out); });
}

}  // namespace palettize
