#include "mil/program_walk.h"

#include <algorithm>

namespace palettize {

namespace {

void WalkModel(const std::string& path, spec::Model& model,
               const std::function<void(const std::string&, spec::Model&, mil::Program&)>& fn) {
  auto walk_pipeline = [&](const std::string& prefix, spec::Pipeline* p) {
    for (int i = 0; i < p->models_size(); ++i)
      WalkModel(prefix + ".models[" + std::to_string(i) + "]", *p->mutable_models(i), fn);
  };
  auto join = [&](const char* field) { return path.empty() ? std::string(field) : path + "." + field; };
  switch (model.Type_case()) {
    case spec::Model::kMlProgram: fn(path, model, *model.mutable_mlprogram()); break;
    case spec::Model::kPipeline: walk_pipeline(join("pipeline"), model.mutable_pipeline()); break;
    case spec::Model::kPipelineClassifier:
      walk_pipeline(join("pipelineClassifier.pipeline"),
                    model.mutable_pipelineclassifier()->mutable_pipeline());
      break;
    case spec::Model::kPipelineRegressor:
      walk_pipeline(join("pipelineRegressor.pipeline"),
                    model.mutable_pipelineregressor()->mutable_pipeline());
      break;
    default: break;
  }
}

void VisitValue(mil::Value& v, const std::function<void(mil::Value&)>& fn);

template <typename Map>
void VisitValueMap(Map& m, const std::function<void(mil::Value&)>& fn) {
  for (const std::string& k : SortedKeys(m)) VisitValue(m.at(k), fn);
}

void VisitValue(mil::Value& v, const std::function<void(mil::Value&)>& fn) {
  if (v.has_blobfilevalue()) {
    fn(v);
    return;
  }
  if (!v.has_immediatevalue()) return;
  auto& imm = *v.mutable_immediatevalue();
  if (imm.has_tuple())
    for (auto& x : *imm.mutable_tuple()->mutable_values()) VisitValue(x, fn);
  if (imm.has_list())
    for (auto& x : *imm.mutable_list()->mutable_values()) VisitValue(x, fn);
  if (imm.has_dictionary())
    for (auto& kv : *imm.mutable_dictionary()->mutable_values()) {
      VisitValue(*kv.mutable_key(), fn);
      VisitValue(*kv.mutable_value(), fn);
    }
}

void VisitBlock(mil::Block& block, const std::function<void(mil::Value&)>& fn) {
  VisitValueMap(*block.mutable_attributes(), fn);
  for (auto& op : *block.mutable_operations()) {
    auto& inputs = *op.mutable_inputs();
    for (const std::string& k : SortedKeys(inputs))
      for (auto& binding : *inputs.at(k).mutable_arguments())
        if (binding.has_value()) VisitValue(*binding.mutable_value(), fn);
    VisitValueMap(*op.mutable_attributes(), fn);
    for (auto& b : *op.mutable_blocks()) VisitBlock(b, fn);
  }
}

}  // namespace

void ForEachProgram(spec::Model& model,
                    const std::function<void(const std::string&, spec::Model&, mil::Program&)>& fn) {
  WalkModel("", model, fn);
}

void ForEachBlobValue(mil::Program& program, const std::function<void(mil::Value&)>& fn) {
  VisitValueMap(*program.mutable_attributes(), fn);
  auto& functions = *program.mutable_functions();
  for (const std::string& name : SortedKeys(functions)) {
    mil::Function& f = functions.at(name);
    VisitValueMap(*f.mutable_attributes(), fn);
    auto& blocks = *f.mutable_block_specializations();
    for (const std::string& key : SortedKeys(blocks)) VisitBlock(blocks.at(key), fn);
  }
}

std::string OpName(const mil::Operation& op) {
  auto it = op.attributes().find("name");
  if (it != op.attributes().end() && it->second.has_immediatevalue() &&
      it->second.immediatevalue().has_tensor() && it->second.immediatevalue().tensor().has_strings() &&
      it->second.immediatevalue().tensor().strings().values_size() == 1)
    return it->second.immediatevalue().tensor().strings().values(0);
  return op.outputs_size() > 0 ? op.outputs(0).name() : std::string();
}

}  // namespace palettize
