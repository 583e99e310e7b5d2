#include "eval/op_registry.h"

#include <vector>

namespace palettize::eval {

// The one list of op families. A new family file (ops_conv.cc, ops_rnn.cc, ...) declares its
// Register<Family>Ops in op_registry.h and adds its call here.
static OpRegistry MakeBuiltin() {
  OpRegistry r;
  RegisterElementwiseOps(r);
  RegisterActivationOps(r);
  RegisterLinearOps(r);
  RegisterShapeOps(r);
  RegisterSliceOps(r);
  RegisterReduceOps(r);
  RegisterConvOps(r);
  RegisterMiscOps(r);
  RegisterPoolOps(r);
  RegisterNormOps(r);
  RegisterConvTransposeOps(r);
  RegisterResampleOps(r);
  RegisterCropResizeOps(r);
  RegisterRecurrentOps(r);
  RegisterControlOps(r);
  RegisterAttentionOps(r);
  RegisterIndexOps(r);
  return r;
}

const OpRegistry& OpRegistry::Builtin() {
  static const OpRegistry registry = MakeBuiltin();
  return registry;
}

const Kernel* OpRegistry::Find(const std::string& op_type) const {
  auto it = kernels_.find(op_type);
  return it == kernels_.end() ? nullptr : &it->second;
}

std::vector<std::string> OpRegistry::OpTypes() const {
  std::vector<std::string> out;
  for (const auto& kv : kernels_) out.push_back(kv.first);
  return out;
}

}  // namespace palettize::eval
