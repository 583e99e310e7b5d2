#include "mil/compressed_weights.h"

#include <map>
#include <set>

#include "mil/program_walk.h"

namespace palettize {

namespace {

bool IsConstexpr(const mil::Operation& op) { return op.type().rfind("constexpr_", 0) == 0; }

// Every op of the block and its nested blocks, in order.
void CollectOps(const mil::Block& block, std::vector<const mil::Operation*>* ops) {
  for (const mil::Operation& op : block.operations()) {
    ops->push_back(&op);
    for (const mil::Block& nested : op.blocks()) CollectOps(nested, ops);
  }
}

void ScanFunction(const std::string& program, const std::string& function, const mil::Block& block,
                  std::vector<CompressedWeight>* out) {
  std::vector<const mil::Operation*> ops;
  CollectOps(block, &ops);
  std::map<std::string, const mil::Operation*> producer;  // output name -> constexpr op
  for (const mil::Operation* op : ops)
    if (IsConstexpr(*op))
      for (const auto& o : op->outputs()) producer[o.name()] = op;
  // Who reads each constexpr output: constexpr ops (it is inside a chain) or others (consumers).
  std::set<std::string> inside;
  std::map<std::string, std::vector<Consumer>> readers;
  for (const mil::Operation* op : ops) {
    for (const std::string& input : SortedKeys(op->inputs())) {
      for (const auto& arg : op->inputs().at(input).arguments()) {
        if (arg.name().empty() || !producer.count(arg.name())) continue;
        if (IsConstexpr(*op))
          inside.insert(arg.name());
        else
          readers[arg.name()].push_back({op->type(), OpName(*op), input, {}});
      }
    }
  }
  for (const mil::Operation* op : ops) {
    if (!IsConstexpr(*op) || op->outputs_size() != 1 || inside.count(op->outputs(0).name())) continue;
    CompressedWeight w;
    w.program = program;
    w.function = function;
    w.name = op->outputs(0).name();
    // Walk the chain back through constexpr inputs to its first op.
    std::vector<std::string> types{op->type()};
    for (const mil::Operation* at = op;;) {
      const mil::Operation* prev = nullptr;
      for (const std::string& input : SortedKeys(at->inputs()))
        for (const auto& arg : at->inputs().at(input).arguments())
          if (!prev && producer.count(arg.name())) prev = producer.at(arg.name());
      if (!prev || types.size() > ops.size()) break;
      types.insert(types.begin(), prev->type());
      at = prev;
    }
    for (size_t i = 0; i < types.size(); ++i) w.chain += (i ? " -> " : "") + types[i];
    if (!ParseTensorType(op->outputs(0).type(), &w.shape).ok()) w.shape = TensorShape{};
    w.consumers = readers[w.name];
    out->push_back(std::move(w));
  }
}

}  // namespace

std::vector<CompressedWeight> FindCompressedWeights(spec::Model& model) {
  std::vector<CompressedWeight> out;
  ForEachProgram(model, [&](const std::string& path, spec::Model&, mil::Program& program) {
    for (const std::string& fname : SortedKeys(program.functions())) {
      const auto& blocks = program.functions().at(fname).block_specializations();
      for (const std::string& opset : SortedKeys(blocks)) ScanFunction(path, fname, blocks.at(opset), &out);
    }
  });
  return out;
}

}  // namespace palettize
