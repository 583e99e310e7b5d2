// Whether the evaluator can run a function: the op types in it (nested blocks included) that no
// kernel implements. `inspect` reports them; `palettize eval` fails at the first one it reaches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "eval/op_registry.h"
#include "mil/weights.h"

namespace palettize::eval {

struct UnsupportedOp {
  std::string op_type;
  uint64_t count = 0;   // ops of this type in the function
  std::string example;  // the name of the first one, in program order
};

// The op types of `function` (the block of its opset) that neither `registry` nor the interpreter
// itself (const, constexpr_*) runs, sorted by type. Empty: every op can run.
std::vector<UnsupportedOp> UnsupportedOps(const mil::Function& function,
                                          const OpRegistry& registry = OpRegistry::Builtin());

}  // namespace palettize::eval
