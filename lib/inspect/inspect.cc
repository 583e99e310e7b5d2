#include "palettize/inspect.h"

#include <map>
#include <set>

#include "blob/blob_reader.h"
#include "compress/mil_plan.h"
#include "eval/support.h"
#include "inspect/weight_stats.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "mil/weights.h"
#include "package/package.h"
#include "package/tensor_reader.h"
#include "util/guard.h"

namespace palettize {

namespace {

// The rule of coremltools' palettize_weights (../shared/coreml-format.md section 6).
std::string WhyNotCandidate(const ConstWeight& w, uint64_t weight_threshold) {
  std::string why = WhyNotPalettizable(MilPlanInput(w));
  if (!why.empty()) return why;
  if (w.shape.elements <= weight_threshold)
    return std::to_string(w.shape.elements) + " elements <= weight_threshold " +
           std::to_string(weight_threshold);
  return "";
}

std::string ModelType(const spec::Model& m) {
  switch (m.Type_case()) {
    case spec::Model::kMlProgram: return "mlProgram";
    case spec::Model::kPipeline: return "pipeline";
    case spec::Model::kPipelineClassifier: return "pipelineClassifier";
    case spec::Model::kPipelineRegressor: return "pipelineRegressor";
    default: return "other";
  }
}

}  // namespace

static Status InspectUnguarded(const std::string& path, const InspectOptions& options, ModelInfo* out) {
  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(path));
  spec::Model& model = package.model();
  ModelInfo info;
  info.path = package.path();
  info.specification_version = model.specificationversion();
  info.type = ModelType(model);
  ForEachProgram(model, [&](const std::string& p, spec::Model& owner, mil::Program& program) {
    ProgramInfo pi;
    pi.path = p;
    pi.specification_version = owner.specificationversion();
    for (const std::string& name : SortedKeys(program.functions())) {
      const mil::Function& f = program.functions().at(name);
      FunctionInfo fi;
      fi.name = name;
      fi.opset = f.opset();
      for (const eval::UnsupportedOp& u : eval::UnsupportedOps(f))
        fi.unsupported_ops.push_back({u.op_type, u.count, u.example});
      fi.evaluable = p.empty() && fi.unsupported_ops.empty();
      pi.functions.push_back(std::move(fi));
    }
    info.programs.push_back(std::move(pi));
  });

  std::vector<ConstWeight> weights;
  PALETTIZE_RETURN_IF_ERROR(FindWeights(model, &weights).WithContext(package.model_path()));
  std::set<std::pair<std::string, uint64_t>> counted_blobs;
  for (const ConstWeight& w : weights) {
    TensorData data;
    PALETTIZE_RETURN_IF_ERROR(ReadTensorData(package, w, &data));
    WeightStats stats = ComputeWeightStats(data, w.shape);
    WeightInfo wi;
    SetWeightIdentity(w, &wi);
    wi.elements = w.shape.elements;
    wi.in_blob = w.value->has_blobfilevalue();
    if (w.shape.bits > 0) {
      BlobDataSize(w.shape.elements, w.shape.bits, &wi.bytes);
    } else {
      for (const std::string& s : data.strings) wi.bytes += s.size();
    }
    std::string file;  // two spellings of one file are one blob
    if (wi.in_blob)
      PALETTIZE_RETURN_IF_ERROR(package.NormalizeBlobFileName(w.value->blobfilevalue().filename(), &file));
    if (!wi.in_blob || counted_blobs.insert({file, w.value->blobfilevalue().offset()}).second)
      info.total_weight_bytes += wi.bytes;
    wi.unique_values = stats.unique_values;
    wi.sparsity = stats.sparsity;
    for (const Consumer& c : w.consumers) wi.consumers.push_back({c.op_type, c.op_name, c.input});
    wi.reason = WhyNotCandidate(w, options.weight_threshold);
    wi.candidate = wi.reason.empty();
    info.weights.push_back(std::move(wi));
  }
  *out = std::move(info);
  return Status::OK();
}

Status Inspect(const std::string& path, const InspectOptions& options, ModelInfo* out) {
  return Guarded(path, [&] { return InspectUnguarded(path, options, out); });
}

}  // namespace palettize
