// Deployment targets of a package's ML Programs: each keeps its input's target when its configs
// fit it (an iOS15 input becomes iOS16, the first with constexpr_lut_to_dense) and is raised to
// iOS18 when a weight needs it; --minimum-deployment-target forces one. A config the target cannot
// express, or an input op whose form the raised target does not accept, is an error before any
// work. Spec versions and opsets are raised once the weights are written.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "encode/lut_ops.h"
#include "mil/weights.h"
#include "palettize/compress.h"
#include "palettize/status.h"
#include "plan/plan.h"

namespace palettize {

struct ProgramTarget {
  spec::Model* owner = nullptr;
  mil::Program* program = nullptr;
  int current = 15;  // iOS version of its opset
  int out = 15;
  int unraised = 15;  // out were no weight of it palettized: the input's, or the forced target
  bool any_palettized = false;
  std::string needs_ios18;  // the first weight that needs iOS18, and why
};

// Per program path ("" for the root model).
using ProgramTargets = std::map<std::string, ProgramTarget>;

// The output target of every ML Program of `model`, from its weights' plans and `forced`
// (kAuto: none). Fails when a plan needs more than `forced`, `forced` would lower the input's
// target, or the raised target cannot hold an op of the input. With `allocation` (a bit
// allocation chooses every nbits, and 3 only where the output is iOS18 anyway) a config's nbits
// 3 does not raise a target.
Status PlanTargets(spec::Model& model, const std::vector<ConstWeight>& weights,
                   const std::vector<WeightPlan>& plans, DeploymentTarget forced, ProgramTargets* out,
                   bool allocation = false);

// With a bit allocation, after it is solved: a program none of whose weights the allocation
// palettizes (`palettized[i]` per weight) is not raised for them, as a config holding null for
// those weights would not raise it.
void DropUnusedTargets(const std::vector<ConstWeight>& weights, const std::vector<bool>& palettized,
                       ProgramTargets* targets);

// The LUT op form a program of target `t` is written in, and the index widths it can hold.
LutForm FormFor(const ProgramTarget& t);
const std::vector<int>& AllowedNbits(const ProgramTarget& t);

// Raises the specification versions and opsets of `model`'s programs to their output targets.
void RaiseTargets(spec::Model& model, ProgramTargets& targets);

}  // namespace palettize
