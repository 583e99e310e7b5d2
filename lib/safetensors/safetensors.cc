// Layout and checks: safetensors.h.
#include "safetensors/safetensors.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "safetensors/header_readers.h"
#include "util/half.h"

namespace palettize {

namespace {

using json = nlohmann::json;

// The reference implementation's limit: a larger header is a damaged or hostile file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeEntry {
  SafeDType type;
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {SafeDType::kBool, "BOOL", 1}, {SafeDType::kU8, "U8", 1},   {SafeDType::kI8, "I8", 1},
    {SafeDType::kU16, "U16", 2},   {SafeDType::kI16, "I16", 2}, {SafeDType::kF16, "F16", 2},
    {SafeDType::kBF16, "BF16", 2}, {SafeDType::kU32, "U32", 4}, {SafeDType::kI32, "I32", 4},
    {SafeDType::kF32, "F32", 4},   {SafeDType::kU64, "U64", 8}, {SafeDType::kI64, "I64", 8},
    {SafeDType::kF64, "F64", 8},
};

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string Quoted(const std::string& name) { return "tensor '" + name + "'"; }

const DTypeEntry* FindDType(const std::string& name) {
  for (const DTypeEntry& e : kDTypes)
    if (name == e.name) return &e;
  return nullptr;
}

// `dtype_json`: the dtype as the header wrote it (JSON).
Status BadDType(const std::string& what, const std::string& dtype_json) {
  std::string all;
  for (const DTypeEntry& e : kDTypes) all += std::string(all.empty() ? "" : ", ") + e.name;
  return Status::InvalidInput(what + ": dtype " + dtype_json + " is not one of " + all);
}

// t->shape set: its element count, unless its bytes pass 2^64.
Status CheckShape(const std::string& name, const DTypeEntry& dtype, SafeTensor* t) {
  t->dtype = dtype.type;
  t->elements = 1;
  bool overflow = false;
  for (const uint64_t n : t->shape) {
    if (n != 0 && t->elements > UINT64_MAX / n)
      overflow = true;
    else
      t->elements *= n;
  }
  if (overflow || t->elements > UINT64_MAX / dtype.size)
    return Status::InvalidInput(Quoted(name) + ": shape " + ShapeText(t->shape) +
                                " has more than 2^64 bytes");
  return Status::OK();
}

// data_offsets [b, e] of a tensor whose shape is checked.
Status CheckOffsets(const std::string& name, uint64_t b, uint64_t e, uint64_t data_bytes,
                    const DTypeEntry& dtype, SafeTensor* t, uint64_t* begin) {
  auto range = [&] {
    return Quoted(name) + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "]";
  };
  if (b > e) return Status::InvalidInput(range() + " end before they begin");
  if (e > data_bytes)
    return Status::InvalidInput(range() + " past end of data (" + std::to_string(data_bytes) + " bytes)");
  t->bytes = e - b;
  if (t->bytes != t->elements * dtype.size)
    return Status::InvalidInput(range() + " hold " + std::to_string(t->bytes) + " bytes, but " +
                                DescribeSafeTensor(*t) + " needs " +
                                std::to_string(t->elements * dtype.size));
  *begin = b;
  return Status::OK();
}

// Checks one header entry, given as JSON, and fills `t` (data pointer relative to the data
// section start).
Status ParseEntry(const std::string& name, const json& v, uint64_t data_bytes, SafeTensor* t,
                  uint64_t* begin) {
  const std::string what = Quoted(name);
  if (!v.is_object()) return Status::InvalidInput(what + ": not an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) return Status::InvalidInput(what + ": no " + key);
  t->name = name;
  const json& dtype = v["dtype"];
  const DTypeEntry* found = dtype.is_string() ? FindDType(dtype.get_ref<const std::string&>()) : nullptr;
  if (found == nullptr) return BadDType(what, dtype.dump());
  const json& shape = v["shape"];
  if (!shape.is_array()) return Status::InvalidInput(what + ": shape is not a list of non-negative integers");
  for (const json& d : shape) {
    if (!d.is_number_unsigned())
      return Status::InvalidInput(what + ": shape is not a list of non-negative integers");
    t->shape.push_back(d.get<uint64_t>());
  }
  PALETTIZE_RETURN_IF_ERROR(CheckShape(name, *found, t));
  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    return Status::InvalidInput(what + ": data_offsets is not a list of two non-negative integers");
  return CheckOffsets(name, off[0].get<uint64_t>(), off[1].get<uint64_t>(), data_bytes, *found, t, begin);
}

}  // namespace

using safetensors_header::EntryFields;
using safetensors_header::FastHeaderReader;
using safetensors_header::HeaderEvents;
using safetensors_header::HeaderReader;

const char* SafeDTypeName(SafeDType t) {
  for (const DTypeEntry& e : kDTypes)
    if (e.type == t) return e.name;
  return "?";
}

size_t SafeDTypeSize(SafeDType t) {
  for (const DTypeEntry& e : kDTypes)
    if (e.type == t) return e.size;
  return 1;
}

std::string DescribeSafeTensor(const SafeTensor& t) {
  return std::string(SafeDTypeName(t.dtype)) + " " + ShapeText(t.shape);
}

double SafeTensor::At(uint64_t i) const {
  const uint8_t* p = data + i * SafeDTypeSize(dtype);
  switch (dtype) {
    case SafeDType::kBool: return *p != 0;
    case SafeDType::kU8: return *p;
    case SafeDType::kI8: return Load<int8_t>(p);
    case SafeDType::kU16: return Load<uint16_t>(p);
    case SafeDType::kI16: return Load<int16_t>(p);
    case SafeDType::kF16: return HalfToFloat(Load<uint16_t>(p));
    case SafeDType::kBF16: return BFloat16ToFloat(Load<uint16_t>(p));
    case SafeDType::kU32: return Load<uint32_t>(p);
    case SafeDType::kI32: return Load<int32_t>(p);
    case SafeDType::kF32: return Load<float>(p);
    case SafeDType::kU64: return double(Load<uint64_t>(p));
    case SafeDType::kI64: return double(Load<int64_t>(p));
    case SafeDType::kF64: return Load<double>(p);
  }
  return 0;
}

void SafeTensor::Read(uint64_t begin, uint64_t n, double* out) const {
  // The common float types without a per-element switch.
  if (dtype == SafeDType::kF32) {
    const uint8_t* p = data + begin * 4;
    for (uint64_t i = 0; i < n; ++i) out[i] = Load<float>(p + i * 4);
  } else if (dtype == SafeDType::kF16) {
    const uint8_t* p = data + begin * 2;
    for (uint64_t i = 0; i < n; ++i) out[i] = HalfToFloat(Load<uint16_t>(p + i * 2));
  } else {
    for (uint64_t i = 0; i < n; ++i) out[i] = At(begin + i);
  }
}

Status ParseSafeTensors(const uint8_t* data, size_t size, const std::string& file,
                        std::vector<SafeTensor>* tensors, std::map<std::string, std::string>* metadata) {
  tensors->clear();
  metadata->clear();
  if (size < 8)
    return Status::InvalidInput(file + ": " + std::to_string(size) +
                                " bytes, too short for a safetensors header length (8 bytes)");
  const uint64_t n = Load<uint64_t>(data);
  if (n > kMaxHeaderBytes)
    return Status::InvalidInput(file + ": header length " + std::to_string(n) + " is more than " +
                                std::to_string(kMaxHeaderBytes) + " bytes");
  if (n > size - 8)
    return Status::InvalidInput(file + ": header length " + std::to_string(n) + " past end of file (" +
                                std::to_string(size) + " bytes)");
  const uint8_t* base = data + 8 + n;
  const uint64_t data_bytes = size - 8 - n;
  std::vector<std::pair<uint64_t, SafeTensor>> found;
  Status first_error;  // of the entry with the smallest name, as a walk in name order finds
  std::string first_error_name;
  auto record = [&](const std::string& name, const Status& st, SafeTensor&& t, uint64_t begin) {
    if (st.ok()) {
      t.data = base + begin;
      found.emplace_back(begin, std::move(t));
    } else if (first_error.ok() || name < first_error_name) {
      first_error = st;
      first_error_name = name;
    }
  };
  // An entry takes at least ~60 bytes ("name": {"dtype": ..., "shape": [], "data_offsets": [0, 0]}).
  const size_t expected = n / 64;
  FastHeaderReader fast(
      expected,
      [&](const std::string& name, EntryFields& f) {
        SafeTensor t;
        t.name = name;
        t.shape = std::move(f.shape);
        uint64_t begin = 0;
        const DTypeEntry* dtype = FindDType(f.dtype);
        Status st =
            dtype == nullptr ? BadDType(Quoted(name), json(f.dtype).dump()) : CheckShape(name, *dtype, &t);
        if (st.ok()) st = CheckOffsets(name, f.offsets[0], f.offsets[1], data_bytes, *dtype, &t, &begin);
        record(name, st.WithContext(file), std::move(t), begin);
      },
      [&](std::string&& key, std::string&& value) { (*metadata)[std::move(key)] = std::move(value); });
  bool parsed = json::sax_parse(data + 8, data + 8 + n, &fast);
  const HeaderEvents* events = &fast;
  std::optional<HeaderReader> general;
  if (!parsed && fast.fallback()) {
    found.clear();
    metadata->clear();
    first_error = Status::OK();
    general.emplace(expected, [&](const std::string& name, const json& v) {
      if (!first_error.ok() && first_error_name < name) return;
      SafeTensor t;
      uint64_t begin = 0;
      if (name != "__metadata__") {
        const Status st = ParseEntry(name, v, data_bytes, &t, &begin).WithContext(file);
        record(name, st, std::move(t), begin);
        return;
      }
      bool strings = v.is_object();
      for (auto it = v.begin(); strings && it != v.end(); ++it) strings = it->is_string();
      if (!strings)
        record(name, Status::InvalidInput(file + ": __metadata__ is not an object of strings"), {}, 0);
      for (auto it = v.begin(); strings && it != v.end(); ++it)
        (*metadata)[it.key()] = it->get<std::string>();
    });
    parsed = json::sax_parse(data + 8, data + 8 + n, &*general);
    events = &*general;
  }
  if (!parsed)
    return Status::InvalidInput(file + ": header is not valid JSON (at byte " +
                                std::to_string(8 + events->error_byte()) + ")");
  if (general && !general->is_object()) return Status::InvalidInput(file + ": header is not a JSON object");
  if (!events->duplicate().empty())
    return Status::InvalidInput(file + ": " + Quoted(events->duplicate()) + " is listed twice");
  PALETTIZE_RETURN_IF_ERROR(first_error);
  // Sorted once by position (then size, so an empty tensor sorts before one it sits at the start
  // of; then name, for a fixed order): each must start at or after the end of the one before.
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    if (a.second.bytes != b.second.bytes) return a.second.bytes < b.second.bytes;
    return a.second.name < b.second.name;
  });
  for (size_t i = 1; i < found.size(); ++i) {
    const auto& [pb, prev] = found[i - 1];
    const auto& [cb, cur] = found[i];
    if (cb < pb + prev.bytes)
      return Status::InvalidInput(file + ": " + Quoted(cur.name) + ": data_offsets [" + std::to_string(cb) +
                                  ", " + std::to_string(cb + cur.bytes) + "] overlap " + Quoted(prev.name) +
                                  " at [" + std::to_string(pb) + ", " + std::to_string(pb + prev.bytes) +
                                  "]");
  }
  tensors->reserve(found.size());
  for (auto& [b, t] : found) tensors->push_back(std::move(t));
  return Status::OK();
}

Status SafeTensorsFile::Open(const std::string& path) {
  PALETTIZE_RETURN_IF_ERROR(file_.Open(path));
  PALETTIZE_RETURN_IF_ERROR(ParseSafeTensors(file_.data(), file_.size(), path, &tensors_, &metadata_));
  header_end_ = 8 + Load<uint64_t>(file_.data());  // checked by ParseSafeTensors
  by_name_ = NameIndex(tensors_.size());
  for (const SafeTensor& t : tensors_) by_name_.Insert(t.name);
  return Status::OK();
}

const SafeTensor* SafeTensorsFile::Find(const std::string& name) const {
  const size_t i = by_name_.Find(name);
  return i == NameIndex::kNone ? nullptr : &tensors_[i];
}

}  // namespace palettize
