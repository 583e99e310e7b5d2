#include "compress/target_rules.h"

#include <algorithm>

#include "mil/program_walk.h"
#include "palettize/option_names.h"

namespace palettize {

namespace {

// "CoreML5" -> iOS 15 (../shared/coreml-format.md section 4).
int OpsetToIOS(const std::string& opset) {
  if (opset.rfind("CoreML", 0) != 0) return 15;
  try {
    return std::stoi(opset.substr(6)) + 10;
  } catch (...) {
    return 15;
  }
}

int SpecVersionFor(int ios) { return ios - 9; }  // iOS16 -> 7, iOS17 -> 8, iOS18 -> 9

// Why `p` (of a weight of `dims`, needs_ios18) needs iOS18; "" when only for its nbits 3 and
// !count_nbits.
std::string WhyIOS18(const WeightPlan& p, const std::vector<uint64_t>& dims, bool count_nbits) {
  const PalettizeConfig& c = p.config;
  if (c.nbits == 3 && count_nbits) return "nbits 3";
  if (c.cluster_dim > 1) return "cluster_dim " + std::to_string(c.cluster_dim);
  if (c.enable_per_channel_scale) return "enable_per_channel_scale";
  if (c.lut_dtype != LutDType::kFloat) return "an 8-bit integer LUT";
  const size_t axis = size_t(p.channel_axis);
  if (c.granularity == Granularity::kPerGroupedChannel && axis < dims.size() && p.group_size != dims[axis])
    return "per_grouped_channel with more than one group";
  return "";
}

// The first op whose iOS16 form iOS18 redefined (constexpr_lut_to_dense, constexpr_sparse_to_dense
// take inputs instead of attributes there), or "".
std::string FindIOS16OnlyOp(const mil::Block& b) {
  for (const mil::Operation& op : b.operations()) {
    if (op.type() == "constexpr_lut_to_dense" || op.type() == "constexpr_sparse_to_dense")
      return op.type() + " '" + OpName(op) + "'";
    for (const mil::Block& nested : op.blocks()) {
      std::string found = FindIOS16OnlyOp(nested);
      if (!found.empty()) return found;
    }
  }
  return "";
}

// Sets t.out from its inputs' needs and `forced` (0: none), or says why it cannot be set.
Status SetTarget(const std::string& path, int forced, ProgramTarget& t) {
  const std::string where = path.empty() ? "" : "program " + path + ": ";
  if (forced != 0 && t.current > forced)
    return Status::InvalidArgument(where + "the input targets iOS" + std::to_string(t.current) + "; " +
                                   GetOptionNames().min_target + " iOS" + std::to_string(forced) +
                                   " cannot lower it");
  if (forced != 0 && forced < 18 && !t.needs_ios18.empty())
    return Status::InvalidArgument(t.needs_ios18 + ", but " + GetOptionNames().min_target + " is iOS" +
                                   std::to_string(forced));
  t.out = t.unraised = std::max(t.current, forced);
  if (t.any_palettized) t.out = std::max(t.out, t.needs_ios18.empty() ? 16 : 18);
  if (t.current >= 18 || t.out < 18) return Status::OK();
  for (const auto& [fname, f] : t.program->functions())
    for (const auto& [opset, block] : f.block_specializations()) {
      std::string op = FindIOS16OnlyOp(block);
      if (!op.empty())
        return Status::InvalidArgument(
            where + (t.needs_ios18.empty() ? "the output targets iOS18" : t.needs_ios18) +
            ", but the input already holds " + op + " in its iOS" + std::to_string(t.current) +
            " form, which iOS18 does not accept; use a config that fits iOS" + std::to_string(t.current) +
            " or decompress the model first");
    }
  return Status::OK();
}

}  // namespace

Status PlanTargets(spec::Model& model, const std::vector<ConstWeight>& weights,
                   const std::vector<WeightPlan>& plans, DeploymentTarget forced, ProgramTargets* out,
                   bool allocation) {
  ProgramTargets& targets = *out;
  ForEachProgram(model, [&](const std::string& path, spec::Model& owner, mil::Program& program) {
    ProgramTarget t;
    t.owner = &owner;
    t.program = &program;
    for (const auto& [name, f] : program.functions()) t.current = std::max(t.current, OpsetToIOS(f.opset()));
    targets[path] = t;
  });
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!plans[i].palettize) continue;
    ProgramTarget& t = targets[weights[i].program];
    t.any_palettized = true;
    if (!plans[i].needs_ios18 || !t.needs_ios18.empty()) continue;
    const std::string why = WhyIOS18(plans[i], weights[i].shape.dims, !allocation);
    if (!why.empty()) t.needs_ios18 = "weight '" + weights[i].name + "' needs iOS18 (" + why + ")";
  }
  for (auto& [path, t] : targets) PALETTIZE_RETURN_IF_ERROR(SetTarget(path, int(forced), t));
  return Status::OK();
}

void DropUnusedTargets(const std::vector<ConstWeight>& weights, const std::vector<bool>& palettized,
                       ProgramTargets* targets) {
  std::map<std::string, bool> used;
  for (size_t i = 0; i < weights.size(); ++i) used[weights[i].program] |= palettized[i];
  for (auto& [path, t] : *targets) {
    if (!t.any_palettized || used[path]) continue;
    t.any_palettized = false;
    t.out = t.unraised;
  }
}

LutForm FormFor(const ProgramTarget& t) { return t.out >= 18 ? LutForm::kIOS18 : LutForm::kIOS16; }

const std::vector<int>& AllowedNbits(const ProgramTarget& t) {
  static const std::vector<int> ios16 = {1, 2, 4, 6, 8}, ios18 = {1, 2, 3, 4, 6, 8};
  return t.out >= 18 ? ios18 : ios16;
}

void RaiseTargets(spec::Model& model, ProgramTargets& targets) {
  int max_spec = 0;
  for (auto& [path, t] : targets) {
    if (t.out > t.current) {
      t.owner->set_specificationversion(std::max(t.owner->specificationversion(), SpecVersionFor(t.out)));
      const std::string opset = "CoreML" + std::to_string(t.out - 10);
      for (auto& [fname, f] : *t.program->mutable_functions()) {
        if (OpsetToIOS(f.opset()) >= t.out) continue;
        auto& blocks = *f.mutable_block_specializations();
        if (blocks.count(f.opset()) && !blocks.count(opset)) {
          blocks[opset].Swap(&blocks.at(f.opset()));
          blocks.erase(f.opset());
        }
        f.set_opset(opset);
      }
    }
    max_spec = std::max(max_spec, t.owner->specificationversion());
  }
  if (model.specificationversion() < max_spec) model.set_specificationversion(max_spec);
}

}  // namespace palettize
