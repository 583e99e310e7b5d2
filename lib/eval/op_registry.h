// Op type -> kernel. Kernels are registered per family (one ops_<family>.cc each); the list of
// families is in op_registry.cc. How to add an op: eval/op_context.h.
#pragma once

#include <functional>
#include <map>
#include <string>

#include "palettize/status.h"

namespace palettize::eval {

class OpContext;

using Kernel = std::function<Status(OpContext&)>;

class OpRegistry {
 public:
  // Every op the evaluator implements (built once, on first use; thread-safe).
  static const OpRegistry& Builtin();

  // Registers `kernel` for `op_type`; a second registration of one type replaces the first.
  void Add(const std::string& op_type, Kernel kernel) { kernels_[op_type] = std::move(kernel); }
  // nullptr for an op type nothing registered.
  const Kernel* Find(const std::string& op_type) const;
  // Every registered op type, sorted (README's list, `inspect`).
  std::vector<std::string> OpTypes() const;

 private:
  std::map<std::string, Kernel> kernels_;
};

// The op families: each registers its kernels (ops_<family>.cc). Listed, and called, in one place:
// op_registry.cc.
void RegisterElementwiseOps(OpRegistry& r);
void RegisterActivationOps(OpRegistry& r);
void RegisterLinearOps(OpRegistry& r);
void RegisterShapeOps(OpRegistry& r);
void RegisterSliceOps(OpRegistry& r);
void RegisterReduceOps(OpRegistry& r);
void RegisterConvOps(OpRegistry& r);
void RegisterMiscOps(OpRegistry& r);
void RegisterPoolOps(OpRegistry& r);
void RegisterNormOps(OpRegistry& r);
void RegisterConvTransposeOps(OpRegistry& r);
void RegisterResampleOps(OpRegistry& r);
void RegisterCropResizeOps(OpRegistry& r);
void RegisterRecurrentOps(OpRegistry& r);
void RegisterControlOps(OpRegistry& r);
void RegisterAttentionOps(OpRegistry& r);
void RegisterIndexOps(OpRegistry& r);

}  // namespace palettize::eval
