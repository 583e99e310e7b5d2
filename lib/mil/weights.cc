#include "mil/weights.h"

#include <map>

#include "mil/dtype.h"
#include "mil/program_walk.h"

namespace palettize {

Status ParseTensorType(const mil::ValueType& type, TensorShape* out) {
  if (!type.has_tensortype()) return Status::InvalidInput("type: not a tensor");
  const mil::TensorType& t = type.tensortype();
  const DTypeInfo* info = FindDType(t.datatype());
  if (info == nullptr) return Status::InvalidInput("type: unknown dataType " + std::to_string(t.datatype()));
  if (t.rank() != t.dimensions_size())
    return Status::InvalidInput("type: rank " + std::to_string(t.rank()) + " but " +
                                std::to_string(t.dimensions_size()) + " dimensions");
  TensorShape s;
  s.mil_type = t.datatype();
  s.bits = info->bits;
  s.elements = 1;
  for (int i = 0; i < t.dimensions_size(); ++i) {
    if (!t.dimensions(i).has_constant())
      return Status::InvalidInput("type: dimension " + std::to_string(i) + " is not constant");
    uint64_t d = t.dimensions(i).constant().size();
    s.dims.push_back(d);
    uint64_t bits;
    if (__builtin_mul_overflow(s.elements, d, &s.elements) ||
        __builtin_mul_overflow(s.elements, uint64_t(s.bits > 0 ? s.bits : 1), &bits))
      return Status::InvalidInput("type: " + DescribeShape(s) + " has too many elements");
  }
  *out = std::move(s);
  return Status::OK();
}

std::string DescribeShape(const TensorShape& shape) {
  std::string s = DTypeName(shape.mil_type) + " [";
  for (size_t i = 0; i < shape.dims.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape.dims[i]);
  }
  return s + "]";
}

namespace {

struct FunctionScan {
  std::string program;
  spec::Model* owner;
  std::string function;
  std::vector<ConstWeight>* out;
  std::map<std::string, size_t> by_output;  // MIL names are unique within a function
  std::map<std::string, double> scalars;    // const scalar outputs (bool, int, float)
};

// The value of a scalar numeric tensor value, if it is one.
bool ScalarOf(const mil::Value& v, double* out) {
  if (!v.has_immediatevalue() || !v.immediatevalue().has_tensor()) return false;
  const mil::TensorValue& t = v.immediatevalue().tensor();
  switch (t.value_case()) {
    case mil::TensorValue::kBools:
      if (t.bools().values_size() != 1) return false;
      *out = t.bools().values(0);
      return true;
    case mil::TensorValue::kInts:
      if (t.ints().values_size() != 1) return false;
      *out = t.ints().values(0);
      return true;
    case mil::TensorValue::kLongInts:
      if (t.longints().values_size() != 1) return false;
      *out = double(t.longints().values(0));
      return true;
    case mil::TensorValue::kFloats:
      if (t.floats().values_size() != 1) return false;
      *out = t.floats().values(0);
      return true;
    default: return false;
  }
}

std::map<std::string, double> ScalarInputs(const mil::Operation& op, const FunctionScan& scan) {
  std::map<std::string, double> out;
  for (const auto& [input, arg] : op.inputs()) {
    if (arg.arguments_size() != 1) continue;
    const auto& b = arg.arguments(0);
    double v;
    if (b.binding_case() == mil::Argument::Binding::kValue && ScalarOf(b.value(), &v)) {
      out[input] = v;
    } else if (b.binding_case() == mil::Argument::Binding::kName) {
      auto it = scan.scalars.find(b.name());
      if (it != scan.scalars.end()) out[input] = it->second;
    }
  }
  return out;
}

Status ScanBlock(mil::Block& block, FunctionScan& scan) {
  for (mil::Operation& op : *block.mutable_operations()) {
    // Inputs first: an op's inputs are defined before it (blocks are topologically sorted).
    for (const std::string& input : SortedKeys(op.inputs())) {
      for (const auto& binding : op.inputs().at(input).arguments()) {
        if (binding.binding_case() != mil::Argument::Binding::kName) continue;
        auto it = scan.by_output.find(binding.name());
        if (it == scan.by_output.end()) continue;
        (*scan.out)[it->second].consumers.push_back({op.type(), OpName(op), input, ScalarInputs(op, scan)});
      }
    }
    for (mil::Block& nested : *op.mutable_blocks()) PALETTIZE_RETURN_IF_ERROR(ScanBlock(nested, scan));
    if (op.type() != "const") continue;

    const std::string name = OpName(op);
    auto fail = [&](const std::string& msg) {
      std::string where = scan.program.empty() ? "" : "program " + scan.program + ": ";
      return Status::InvalidInput(where + "function '" + scan.function + "': const '" + name + "': " + msg);
    };
    if (op.outputs_size() != 1) return fail("expected 1 output, found " + std::to_string(op.outputs_size()));
    auto val = op.mutable_attributes()->find("val");
    if (val == op.mutable_attributes()->end()) return fail("missing attribute 'val'");
    const mil::ValueType& type = op.outputs(0).type();
    if (!type.has_tensortype()) continue;  // lists, tuples, dictionaries: not weights
    if (double scalar; ScalarOf(val->second, &scalar)) scan.scalars[op.outputs(0).name()] = scalar;
    TensorShape shape;
    Status st = ParseTensorType(type, &shape);
    if (!st.ok()) return fail("output " + st.message());
    if (shape.dims.empty()) continue;  // scalars are not weights
    if (!val->second.has_blobfilevalue() && !val->second.has_immediatevalue()) return fail("val: no value");
    if (val->second.has_type() && val->second.type().has_tensortype()) {
      TensorShape val_shape;
      st = ParseTensorType(val->second.type(), &val_shape);
      if (!st.ok()) return fail("val " + st.message());
      if (val_shape.mil_type != shape.mil_type || val_shape.dims != shape.dims)
        return fail("val type " + DescribeShape(val_shape) + " disagrees with output type " +
                    DescribeShape(shape));
    }
    ConstWeight w;
    w.program = scan.program;
    w.owner = scan.owner;
    w.function = scan.function;
    w.name = name;
    w.output = op.outputs(0).name();
    w.block = &block;
    w.op = &op;
    w.value = &val->second;
    w.shape = std::move(shape);
    scan.by_output[w.output] = scan.out->size();
    scan.out->push_back(std::move(w));
  }
  return Status::OK();
}

}  // namespace

Status FindWeights(spec::Model& model, std::vector<ConstWeight>* out) {
  out->clear();
  Status status;
  ForEachProgram(model, [&](const std::string& path, spec::Model& owner, mil::Program& program) {
    if (!status.ok()) return;
    auto& functions = *program.mutable_functions();
    for (const std::string& fname : SortedKeys(functions)) {
      auto& blocks = *functions.at(fname).mutable_block_specializations();
      for (const std::string& opset : SortedKeys(blocks)) {
        FunctionScan scan{path, &owner, fname, out, {}, {}};
        status = ScanBlock(blocks.at(opset), scan);
        if (!status.ok()) return;
      }
    }
  });
  return status;
}

}  // namespace palettize
