// Rules: input_shapes.h.
#include "eval/input_shapes.h"

#include <google/protobuf/unknown_field_set.h>

#include "Description.pb.h"
#include "MIL.pb.h"
#include "Model.pb.h"
#include "eval/op_context.h"
#include "eval/tensor.h"

namespace palettize::eval {

namespace {

constexpr int kDescriptionField = 2;  // Model.description in Core ML's Model.proto

// The description's shapes of one input, when they fit what the function declares (`want`).
bool FromFeature(const desc::FeatureDescription& f, const DeclaredType& want, DescribedShape* out) {
  if (!f.type().has_multiarraytype() || !want.tensor) return false;
  const desc::ArrayFeatureType& a = f.type().multiarraytype();
  const size_t rank = want.dims.size();
  auto fits = [&](const auto& shape) {
    if (size_t(shape.size()) != rank) return false;
    for (size_t k = 0; k < rank; ++k)
      if (shape[int(k)] < 0 || (want.dims[k] >= 0 && shape[int(k)] != want.dims[k])) return false;
    return true;
  };
  if (!fits(a.shape())) return false;
  DescribedShape d;
  d.default_shape.assign(a.shape().begin(), a.shape().end());
  if (a.has_enumeratedshapes()) {
    for (const auto& s : a.enumeratedshapes().shapes())
      if (fits(s.shape())) d.enumerated.emplace_back(s.shape().begin(), s.shape().end());
    if (d.enumerated.empty()) return false;
  } else if (a.has_shaperange()) {
    if (size_t(a.shaperange().sizeranges_size()) != rank) return false;
    for (const desc::SizeRange& r : a.shaperange().sizeranges())
      d.ranges.emplace_back(int64_t(r.lowerbound()), r.upperbound() < 0 ? -1 : r.upperbound());
  } else {
    d.enumerated.push_back(d.default_shape);
  }
  *out = std::move(d);
  return true;
}

}  // namespace

Status DescribedShapes(const Package& package, const std::string& function,
                       const std::vector<std::pair<std::string, const mil::ValueType*>>& declared,
                       std::map<std::string, DescribedShape>* out) {
  out->clear();
  const google::protobuf::Message& model = package.model();
  const google::protobuf::UnknownFieldSet& unknown = model.GetReflection()->GetUnknownFields(model);
  desc::ModelDescription description;
  bool found = false;
  for (int k = 0; k < unknown.field_count(); ++k) {
    const google::protobuf::UnknownField& f = unknown.field(k);
    if (f.number() != kDescriptionField || f.type() != google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED)
      continue;
    if (!description.MergeFromString(f.length_delimited()))  // repeated occurrences merge, as protobuf's
      return Status::InvalidInput(package.model_path() + ": description: does not parse");
    found = true;
  }
  if (!found) return Status::OK();
  const google::protobuf::RepeatedPtrField<desc::FeatureDescription>* inputs = nullptr;
  if (description.functions_size() == 0) {
    if (function == "main") inputs = &description.input();
  } else {
    for (const desc::FunctionDescription& f : description.functions())
      if (f.name() == function) inputs = &f.input();
  }
  if (inputs == nullptr) return Status::OK();
  for (const auto& [name, type] : declared) {
    const DeclaredType want = ParseDeclaredType(*type);
    for (const desc::FeatureDescription& f : *inputs) {
      DescribedShape d;
      if (f.name() == name && FromFeature(f, want, &d)) (*out)[name] = std::move(d);
    }
  }
  return Status::OK();
}

mil::ValueType WithDefaultShape(const mil::ValueType& declared, const DescribedShape& described) {
  mil::ValueType t = declared;
  auto* dims = t.mutable_tensortype()->mutable_dimensions();
  for (int k = 0; k < dims->size() && size_t(k) < described.default_shape.size(); ++k)
    if (!dims->Get(k).has_constant())
      dims->Mutable(k)->mutable_constant()->set_size(uint64_t(described.default_shape[size_t(k)]));
  return t;
}

bool ShapeAllowed(const DescribedShape& described, const std::vector<int64_t>& shape, std::string* allowed) {
  allowed->clear();
  bool ok = false;
  for (const std::vector<int64_t>& s : described.enumerated) {
    *allowed += (allowed->empty() ? "" : " or ") + ShapeText(s);
    ok = ok || s == shape;
  }
  if (described.ranges.empty()) return ok;
  ok = shape.size() == described.ranges.size();
  *allowed = "[";
  for (size_t k = 0; k < described.ranges.size(); ++k) {
    const auto [low, high] = described.ranges[k];
    *allowed += (k ? ", " : "") + std::to_string(low);
    if (high != low) *allowed += ".." + (high < 0 ? std::string() : std::to_string(high));
    ok = ok && k < shape.size() && shape[k] >= low && (high < 0 || shape[k] <= high);
  }
  *allowed += "]";
  return ok;
}

}  // namespace palettize::eval
