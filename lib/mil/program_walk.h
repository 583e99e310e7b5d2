// Walks over the ML Programs in a model (including those nested in pipelines) and over every
// Value they hold. Map fields are visited in key order so that every walk, and so every output
// built from one, is deterministic.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "Model.pb.h"

namespace palettize {

namespace spec = CoreML::Specification;
namespace mil = CoreML::Specification::MILSpec;

// Calls fn(path, model, program) for each ML Program: path is "" for the root model and e.g.
// "pipeline.models[1]" or "pipelineClassifier.pipeline.models[0]" for nested ones.
void ForEachProgram(
    spec::Model& model,
    const std::function<void(const std::string& path, spec::Model& owner, mil::Program& program)>& fn);

// Calls fn on each Value, anywhere in the program, whose storage is a blob file.
void ForEachBlobValue(mil::Program& program, const std::function<void(mil::Value& value)>& fn);

// The name of an op: attributes["name"] when present as a string, else its first output's name.
std::string OpName(const mil::Operation& op);

// The map's keys in sorted order.
template <typename Map>
std::vector<std::string> SortedKeys(const Map& m) {
  std::vector<std::string> keys;
  keys.reserve(m.size());
  for (const auto& kv : m) keys.push_back(kv.first);
  std::sort(keys.begin(), keys.end());
  return keys;
}

}  // namespace palettize
