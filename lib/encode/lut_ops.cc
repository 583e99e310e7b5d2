#include "encode/lut_ops.h"

#include <cstring>

#include "encode/bit_pack.h"
#include "mil/dtype.h"
#include "mil/tensor_data.h"
#include "util/half.h"

namespace palettize {

namespace {

using MT = mil::DataType;

void SetTensorType(mil::ValueType* type, int mil_type, const std::vector<uint64_t>& dims) {
  auto* t = type->mutable_tensortype();
  t->set_datatype(mil::DataType(mil_type));
  t->set_rank(int64_t(dims.size()));
  for (uint64_t d : dims) t->add_dimensions()->mutable_constant()->set_size(d);
}

struct ValueMaker {
  const std::string& weight_file;
  const BlobSink& sink;
  Status status;
  uint64_t bytes = 0;

  // A tensor value from raw bytes; to a blob when it has 10 or more elements, as coremltools does.
  mil::Value Make(int mil_type, const std::vector<uint64_t>& dims, std::string raw, uint64_t elements) {
    mil::Value v;
    SetTensorType(v.mutable_type(), mil_type, dims);
    bytes += raw.size();
    const DTypeInfo* info = FindDType(mil_type);
    if (elements >= 10 && info->blob_dtype != 0) {
      PendingBlob b;
      b.file_name = weight_file;
      b.blob_dtype = info->blob_dtype;
      b.padding_bits = raw.size() * 8 - elements * uint64_t(info->bits);
      b.data = std::move(raw);
      uint64_t handle = 0;
      if (status.ok()) status = sink(std::move(b), &handle);
      auto* ref = v.mutable_blobfilevalue();
      ref->set_filename(kPendingBlobFile);
      ref->set_offset(handle);
    } else {
      v.mutable_immediatevalue()->mutable_tensor()->mutable_bytes()->set_values(std::move(raw));
    }
    return v;
  }
  mil::Value Make(int mil_type, const std::vector<uint64_t>& dims, const std::vector<double>& values) {
    if (mil_type == MT::FLOAT32 && values.size() < 10) {  // coremltools writes small fp32 as floats
      mil::Value v;
      SetTensorType(v.mutable_type(), mil_type, dims);
      auto* f = v.mutable_immediatevalue()->mutable_tensor()->mutable_floats();
      for (double x : values) f->add_values(float(x));
      bytes += 4 * values.size();
      return v;
    }
    return Make(mil_type, dims, EncodeElements(values, mil_type), values.size());
  }
};

mil::Value StringValue(const std::string& s) {
  mil::Value v;
  v.mutable_type()->mutable_tensortype()->set_datatype(mil::STRING);
  v.mutable_immediatevalue()->mutable_tensor()->mutable_strings()->add_values(s);
  return v;
}

mil::Value Int32Scalar(int32_t x) {
  mil::Value v;
  v.mutable_type()->mutable_tensortype()->set_datatype(mil::INT32);
  v.mutable_immediatevalue()->mutable_tensor()->mutable_ints()->add_values(x);
  return v;
}

std::string Unique(const std::string& base, std::set<std::string>* used) {
  std::string name = base;
  for (int i = 1; used->count(name); ++i) name = base + "_" + std::to_string(i);
  used->insert(name);
  return name;
}

void BindValue(mil::Operation* op, const std::string& input, mil::Value v) {
  *(*op->mutable_inputs())[input].add_arguments()->mutable_value() = std::move(v);
}

void BindName(mil::Operation* op, const std::string& input, const std::string& name) {
  (*op->mutable_inputs())[input].add_arguments()->set_name(name);
}

// A new op named `name` whose one output `output` has type `type`.
mil::Operation NewOp(const std::string& op_type, const std::string& name, const std::string& output,
                     const mil::ValueType& type) {
  mil::Operation op;
  op.set_type(op_type);
  (*op.mutable_attributes())["name"] = StringValue(name);
  auto* out = op.add_outputs();
  out->set_name(output);
  *out->mutable_type() = type;
  return op;
}

// Inserts `ops` into `block` just before `anchor`, in order.
void InsertBefore(mil::Block* block, const mil::Operation* anchor, std::vector<mil::Operation> ops) {
  auto* list = block->mutable_operations();
  int at = 0;
  while (at < list->size() && &list->Get(at) != anchor) ++at;
  for (mil::Operation& op : ops) {
    *list->Add() = std::move(op);
    for (int i = list->size() - 1; i > at; --i) list->SwapElements(i, i - 1);
    ++at;
  }
}

}  // namespace

uint64_t LutEncodedBytes(const PalettizedWeight& p, int mil_type, LutDType lut_dtype, LutForm form) {
  const uint64_t elem = uint64_t(FindDType(mil_type)->bits / 8);
  // The index count from its shape: a sweep's results carry no indices until written.
  uint64_t indices = 1;
  for (uint64_t d : p.indices_shape) indices *= d;
  uint64_t bytes = PackedSize(indices, p.nbits);
  const uint64_t entries = p.tables * (uint64_t(1) << p.nbits) * uint64_t(p.cluster_dim);
  if (lut_dtype == LutDType::kFloat) {
    bytes += entries * elem;
  } else {
    bytes += entries + p.tables * elem + (lut_dtype == LutDType::kUInt8 ? p.tables : 0);
  }
  if (form == LutForm::kIOS16) bytes += 4 * p.indices_shape.size();  // the uint32 shape
  return bytes + p.channel_scale.size() * elem;
}

namespace {

// The size half of ChooseScaleForm: "" when the folded form may be taken, else why not.
std::string SizeRule(const ScaleFormOutcome& o, const std::vector<uint64_t>& dims, int mil_type,
                     PerChannelScaleForm form) {
  if (form == PerChannelScaleForm::kWrapper) return "wrapper form asked for";
  if (form == PerChannelScaleForm::kAuto && 2 * o.folded_bytes > 3 * o.wrapper_bytes)
    return "folded form larger than 1.5 x the wrapper form";
  // Even when asked for: a fold as large as the weight would leave it uncompressed.
  uint64_t dense = uint64_t(FindDType(mil_type)->bits / 8);
  for (uint64_t d : dims) dense *= d;
  if (o.folded_bytes >= dense) return "folded form not smaller than the dense weight";
  return "";
}

}  // namespace

uint64_t LutEncodedBytes(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type,
                         LutDType lut_dtype, LutForm form, PerChannelScaleForm scale_form) {
  ScaleFormOutcome o;
  o.wrapper_bytes = LutEncodedBytes(p, mil_type, lut_dtype, form);
  if (p.channel_scale.empty() || form != LutForm::kIOS18) return o.wrapper_bytes;
  o.folded_bytes = FoldedBytes(p, dims, mil_type);
  return SizeRule(o, dims, mil_type, scale_form).empty() ? o.folded_bytes : o.wrapper_bytes;
}

ScaleFormOutcome ChooseScaleForm(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type,
                                 LutDType lut_dtype, PerChannelScaleForm form, FoldedLut* fold) {
  ScaleFormOutcome out;
  out.wrapper_bytes = LutEncodedBytes(p, mil_type, lut_dtype, LutForm::kIOS18);
  out.folded_bytes = FoldedBytes(p, dims, mil_type);
  // Size first: the fold (and its per-element check) is skipped when it would not be taken.
  out.note = SizeRule(out, dims, mil_type, form);
  if (!out.note.empty()) return out;
  std::string reason;
  if (!FoldChannelScale(p, dims, mil_type, fold, &reason)) {
    out.note = "not exact: " + reason;
    return out;
  }
  out.folded = true;
  return out;
}

Status RewriteAsLut(const ConstWeight& w, const PalettizedWeight& p, LutDType lut_dtype, LutForm form,
                    const std::string& weight_file, std::set<std::string>* used_names, const BlobSink& sink,
                    uint64_t* bytes, PerChannelScaleForm scale_form, ScaleFormOutcome* scale_outcome) {
  const int dtype = w.shape.mil_type;
  const uint64_t K = uint64_t(1) << p.nbits;
  const uint64_t D = uint64_t(p.cluster_dim);
  const mil::ValueType out_type = w.op->outputs(0).type();
  const std::string output = w.output;
  const std::string name = w.name;
  ValueMaker values{weight_file, sink, Status::OK()};

  // Moved into its value below (a copy of it was 10% of a 6-bit per_tensor run's CPU, with the
  // page faults of the copy's fresh pages).
  std::string packed(PackedSize(p.indices.size(), p.nbits), '\0');
  const uint64_t packed_bytes = packed.size();
  PackBits(p.indices.data(), p.indices.size(), p.nbits, reinterpret_cast<uint8_t*>(packed.data()));

  if (form == LutForm::kIOS16) {
    mil::Operation op = NewOp("constexpr_lut_to_dense", name, output, out_type);
    auto& attrs = *op.mutable_attributes();
    attrs["indices"] = values.Make(MT::UINT8, {packed_bytes}, std::move(packed), packed_bytes);
    attrs["lut"] = values.Make(dtype, {K}, p.lut);
    std::vector<double> shape(w.shape.dims.begin(), w.shape.dims.end());
    attrs["shape"] = values.Make(MT::UINT32, {shape.size()}, EncodeElements(shape, MT::UINT32), shape.size());
    *w.op = std::move(op);
    *bytes = values.bytes;
    return values.status;
  }

  FoldedLut fold;
  ScaleFormOutcome outcome;
  if (!p.channel_scale.empty())
    outcome = ChooseScaleForm(p, w.shape.dims, dtype, lut_dtype, scale_form, &fold);
  if (scale_outcome != nullptr) *scale_outcome = outcome;

  std::vector<mil::Operation> before;
  // The LUT: a value, or the output of a shift/scale op over an 8-bit table.
  std::vector<uint64_t> lut_shape(w.shape.dims.size(), 1);
  lut_shape[size_t(p.channel_axis)] = p.tables;
  std::vector<uint64_t> lut_table_shape = lut_shape;
  lut_shape.push_back(K);
  lut_shape.push_back(D);
  mil::Value lut_value;
  std::string lut_name;
  if (outcome.folded) {
    lut_value = values.Make(dtype, fold.shape, fold.lut);
  } else if (lut_dtype == LutDType::kFloat) {
    lut_value = values.Make(dtype, lut_shape, p.lut);
  } else {
    const int qtype = lut_dtype == LutDType::kInt8 ? MT::INT8 : MT::UINT8;
    std::vector<uint64_t> scale_shape = lut_table_shape;
    scale_shape.push_back(1);
    scale_shape.push_back(1);
    mil::ValueType lut_type;
    SetTensorType(&lut_type, dtype, lut_shape);
    lut_name = Unique(name + "_lut", used_names);
    mil::Operation q = NewOp("constexpr_blockwise_shift_scale", lut_name, lut_name, lut_type);
    BindValue(&q, "data", values.Make(qtype, lut_shape, p.lut));
    BindValue(&q, "scale", values.Make(dtype, scale_shape, p.lut_scale));
    if (lut_dtype == LutDType::kUInt8) BindValue(&q, "offset", values.Make(qtype, scale_shape, p.lut_offset));
    before.push_back(std::move(q));
  }

  const int index_type = p.nbits == 1   ? MT::UINT1
                         : p.nbits == 2 ? MT::UINT2
                         : p.nbits == 3 ? MT::UINT3
                         : p.nbits == 4 ? MT::UINT4
                         : p.nbits == 6 ? MT::UINT6
                                        : MT::UINT8;
  // Called once: it takes `packed`.
  auto make_lut_op = [&](const std::string& op_name, const std::string& out_name) {
    mil::Operation op = NewOp("constexpr_lut_to_dense", op_name, out_name, out_type);
    BindValue(&op, "indices", values.Make(index_type, p.indices_shape, std::move(packed), p.indices.size()));
    if (lut_name.empty())
      BindValue(&op, "lut", std::move(lut_value));
    else
      BindName(&op, "lut", lut_name);
    if (D > 1) BindValue(&op, "vector_axis", Int32Scalar(p.channel_axis));
    return op;
  };
  if (p.channel_scale.empty() || outcome.folded) {
    *w.op = make_lut_op(name, output);
  } else {
    std::string dense = Unique(name + "_palettized", used_names);
    before.push_back(make_lut_op(dense, dense));
    mil::Operation s = NewOp("constexpr_blockwise_shift_scale", name, output, out_type);
    BindName(&s, "data", dense);
    BindValue(&s, "scale", values.Make(dtype, p.scale_shape, p.channel_scale));
    *w.op = std::move(s);
  }
  InsertBefore(w.block, w.op, std::move(before));
  *bytes = values.bytes;
  return values.status;
}

}  // namespace palettize
