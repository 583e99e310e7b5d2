#include "eval/op_context.h"

#include "MIL.pb.h"
#include "eval/interpreter.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"

namespace palettize::eval {

DeclaredType ParseDeclaredType(const mil::ValueType& type) {
  DeclaredType d;
  if (!type.has_tensortype()) return d;
  d.tensor = true;
  d.dtype = type.tensortype().datatype();
  for (const auto& dim : type.tensortype().dimensions())
    d.dims.push_back(dim.has_constant() ? int64_t(dim.constant().size()) : -1);
  return d;
}

OpContext::OpContext(Interpreter& interp, const mil::Operation& op, Scope& scope)
    : interp_(interp), op_(op), scope_(scope), name_(OpName(op)) {
  for (const auto& o : op.outputs()) declared_.push_back(ParseDeclaredType(o.type()));
  outputs_.resize(declared_.size());
  set_.assign(declared_.size(), false);
}

OpContext::~OpContext() = default;

const std::string& OpContext::type() const { return op_.type(); }

Status OpContext::Fail(const std::string& message) const {
  return Status::InvalidInput(interp_.model_file() + ": op '" + name_ + "' (" + op_.type() + "): " + message);
}

bool OpContext::Has(const std::string& param) const {
  auto it = op_.inputs().find(param);
  return it != op_.inputs().end() && it->second.arguments_size() > 0;
}

Status OpContext::Binding(const std::string& param, size_t index, const Tensor** out) {
  const mil::Argument::Binding& b = op_.inputs().at(param).arguments(int(index));
  if (b.binding_case() == mil::Argument::Binding::kName) {
    *out = scope_.Find(b.name());
    if (*out == nullptr) return Fail(param + ": '" + b.name() + "' is not defined before this op");
    return Status::OK();
  }
  if (b.binding_case() != mil::Argument::Binding::kValue) return Fail(param + ": binds nothing");
  auto t = std::make_unique<Tensor>();
  Status st = interp_.ValueToTensor(b.value(), param, t.get());
  if (!st.ok()) return Fail(st.message());
  *out = t.get();
  immediates_.push_back(std::move(t));
  return Status::OK();
}

Status OpContext::OptionalInput(const std::string& param, const Tensor** out) {
  *out = nullptr;
  if (!Has(param)) return Status::OK();
  const int n = op_.inputs().at(param).arguments_size();
  if (n != 1) return Fail(param + ": a tuple of " + std::to_string(n) + " values, expected one");
  return Binding(param, 0, out);
}

Status OpContext::Input(const std::string& param, const Tensor** out) {
  if (!Has(param)) return Fail("missing parameter '" + param + "'");
  return OptionalInput(param, out);
}

Status OpContext::Inputs(const std::string& param, std::vector<const Tensor*>* out) {
  out->clear();
  if (!Has(param)) return Fail("missing parameter '" + param + "'");
  const int n = op_.inputs().at(param).arguments_size();
  for (int k = 0; k < n; ++k) {
    const Tensor* t = nullptr;
    PALETTIZE_RETURN_IF_ERROR(Binding(param, size_t(k), &t));
    out->push_back(t);
  }
  return Status::OK();
}

Status OpContext::Scalar(const std::string& param, const Tensor** out) {
  PALETTIZE_RETURN_IF_ERROR(Input(param, out));
  if ((*out)->size() != 1) return Fail(param + ": " + DescribeTensor(**out) + ", expected one value");
  return Status::OK();
}

Status OpContext::Int(const std::string& param, int64_t* out) {
  const Tensor* t = nullptr;
  PALETTIZE_RETURN_IF_ERROR(Scalar(param, &t));
  if (!IsIntDType(t->dtype())) return Fail(param + ": " + DescribeTensor(*t) + ", expected an integer");
  *out = t->i()[0];
  return Status::OK();
}

Status OpContext::IntOr(const std::string& param, int64_t dflt, int64_t* out) {
  if (!Has(param)) {
    *out = dflt;
    return Status::OK();
  }
  return Int(param, out);
}

Status OpContext::Float(const std::string& param, double* out) {
  const Tensor* t = nullptr;
  PALETTIZE_RETURN_IF_ERROR(Scalar(param, &t));
  if (t->is_string()) return Fail(param + ": " + DescribeTensor(*t) + ", expected a number");
  *out = t->at(0);
  return Status::OK();
}

Status OpContext::FloatOr(const std::string& param, double dflt, double* out) {
  if (!Has(param)) {
    *out = dflt;
    return Status::OK();
  }
  return Float(param, out);
}

Status OpContext::Bool(const std::string& param, bool* out) {
  int64_t v = 0;
  PALETTIZE_RETURN_IF_ERROR(Int(param, &v));
  *out = v != 0;
  return Status::OK();
}

Status OpContext::BoolOr(const std::string& param, bool dflt, bool* out) {
  if (!Has(param)) {
    *out = dflt;
    return Status::OK();
  }
  return Bool(param, out);
}

Status OpContext::String(const std::string& param, std::string* out) {
  const Tensor* t = nullptr;
  PALETTIZE_RETURN_IF_ERROR(Scalar(param, &t));
  if (!t->is_string()) return Fail(param + ": " + DescribeTensor(*t) + ", expected a string");
  *out = t->s()[0];
  return Status::OK();
}

Status OpContext::StringOr(const std::string& param, const std::string& dflt, std::string* out) {
  if (!Has(param)) {
    *out = dflt;
    return Status::OK();
  }
  return String(param, out);
}

Status OpContext::Ints(const std::string& param, std::vector<int64_t>* out) {
  const Tensor* t = nullptr;
  PALETTIZE_RETURN_IF_ERROR(Input(param, &t));
  if (!IsIntDType(t->dtype()) || t->rank() > 1)
    return Fail(param + ": " + DescribeTensor(*t) + ", expected integers of rank 0 or 1");
  *out = t->i();
  return Status::OK();
}

Status OpContext::IntsOr(const std::string& param, const std::vector<int64_t>& dflt,
                         std::vector<int64_t>* out) {
  if (!Has(param)) {
    *out = dflt;
    return Status::OK();
  }
  return Ints(param, out);
}

int OpContext::num_outputs() const { return int(declared_.size()); }

Status OpContext::SetOutput(int index, Tensor value, bool representable) {
  if (index < 0 || size_t(index) >= declared_.size())
    return Fail("output " + std::to_string(index) + " set, the op declares " +
                std::to_string(declared_.size()));
  const DeclaredType& d = declared_[size_t(index)];
  if (d.tensor) {
    bool ok = d.dtype == value.dtype() && d.dims.size() == value.shape().size();
    for (size_t k = 0; ok && k < d.dims.size(); ++k) ok = d.dims[k] < 0 || d.dims[k] == value.shape()[k];
    if (!ok)
      return Fail("output " + std::to_string(index) + ": computed " + DescribeTensor(value) + ", declared " +
                  DTypeName(d.dtype) + " " + ShapeText(d.dims));
  }
  if (!representable) value.RoundToDType();
  outputs_[size_t(index)] = std::move(value);
  set_[size_t(index)] = true;
  return Status::OK();
}

int OpContext::num_blocks() const { return op_.blocks_size(); }

Status OpContext::RunBlock(int index, const std::vector<Tensor>& inputs, std::vector<Tensor>* outputs) {
  if (index < 0 || index >= op_.blocks_size()) return Fail("no block " + std::to_string(index));
  return interp_.RunBlock(op_.blocks(index), &scope_, inputs, outputs);
}

}  // namespace palettize::eval
