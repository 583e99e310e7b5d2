#include "eval/support.h"

#include <map>

#include "MIL.pb.h"
#include "decompress/constexpr_eval.h"
#include "mil/program_walk.h"

namespace palettize::eval {

namespace {

void Walk(const mil::Block& block, const OpRegistry& registry, std::map<std::string, UnsupportedOp>* out) {
  for (const mil::Operation& op : block.operations()) {
    // The interpreter runs const and constexpr chains itself (interpreter.cc, RunOp).
    if (op.type() != "const" && !IsDecompressible(op) && registry.Find(op.type()) == nullptr) {
      UnsupportedOp& u = (*out)[op.type()];
      if (u.count++ == 0) {
        u.op_type = op.type();
        u.example = OpName(op);
      }
    }
    for (const mil::Block& inner : op.blocks()) Walk(inner, registry, out);
  }
}

}  // namespace

std::vector<UnsupportedOp> UnsupportedOps(const mil::Function& function, const OpRegistry& registry) {
  std::map<std::string, UnsupportedOp> found;
  auto it = function.block_specializations().find(function.opset());
  if (it != function.block_specializations().end()) Walk(it->second, registry, &found);
  std::vector<UnsupportedOp> out;
  out.reserve(found.size());
  for (auto& kv : found) out.push_back(std::move(kv.second));
  return out;
}

}  // namespace palettize::eval
