// Layout and checks: safetensors.h.
#include "safetensors/safetensors.h"

#include <algorithm>
#include <cstring>
#include <deque>
#include <functional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include <nlohmann/json.hpp>

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
    {SafeDType::kBool, "BOOL", 1}, {SafeDType::kU8, "U8", 1},     {SafeDType::kI8, "I8", 1},
    {SafeDType::kU16, "U16", 2},   {SafeDType::kI16, "I16", 2},   {SafeDType::kF16, "F16", 2},
    {SafeDType::kBF16, "BF16", 2}, {SafeDType::kU32, "U32", 4},   {SafeDType::kI32, "I32", 4},
    {SafeDType::kF32, "F32", 4},   {SafeDType::kU64, "U64", 8},   {SafeDType::kI64, "I64", 8},
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

// Checks one header entry and fills `t` (data pointer relative to the data section start).
Status ParseEntry(const std::string& name, const json& v, uint64_t data_bytes, SafeTensor* t,
                  uint64_t* begin) {
  const std::string what = Quoted(name);
  if (!v.is_object()) return Status::InvalidInput(what + ": not an object");
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) return Status::InvalidInput(what + ": no " + key);
  t->name = name;
  const json& dtype = v["dtype"];
  const DTypeEntry* found = nullptr;
  if (dtype.is_string())
    for (const DTypeEntry& e : kDTypes)
      if (dtype.get_ref<const std::string&>() == e.name) found = &e;
  if (found == nullptr) {
    std::string all;
    for (const DTypeEntry& e : kDTypes) all += std::string(all.empty() ? "" : ", ") + e.name;
    return Status::InvalidInput(what + ": dtype " + dtype.dump() + " is not one of " + all);
  }
  t->dtype = found->type;
  const json& shape = v["shape"];
  if (!shape.is_array()) return Status::InvalidInput(what + ": shape is not a list of non-negative integers");
  t->elements = 1;
  bool overflow = false;
  for (const json& d : shape) {
    if (!d.is_number_unsigned()) return Status::InvalidInput(what + ": shape is not a list of non-negative integers");
    const uint64_t n = d.get<uint64_t>();
    t->shape.push_back(n);
    if (n != 0 && t->elements > UINT64_MAX / n) overflow = true;
    else t->elements *= n;
  }
  if (overflow || t->elements > UINT64_MAX / found->size)
    return Status::InvalidInput(what + ": shape " + ShapeText(t->shape) + " has more than 2^64 bytes");
  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
    return Status::InvalidInput(what + ": data_offsets is not a list of two non-negative integers");
  const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
  const std::string range = "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "]";
  if (b > e) return Status::InvalidInput(what + ": " + range + " end before they begin");
  if (e > data_bytes)
    return Status::InvalidInput(what + ": " + range + " past end of data (" + std::to_string(data_bytes) + " bytes)");
  t->bytes = e - b;
  if (t->bytes != t->elements * found->size)
    return Status::InvalidInput(what + ": " + range + " hold " + std::to_string(t->bytes) + " bytes, but " +
                                DescribeSafeTensor(*t) + " needs " + std::to_string(t->elements * found->size));
  *begin = b;
  return Status::OK();
}

// Reads the header as a stream of JSON events, holding one entry's value at a time: the header is
// never one JSON document in memory. (nlohmann's parse with a callback, used before to catch
// duplicate names, scans the whole header object at the end of every entry: quadratic, 100k
// tensors took minutes.) Each entry's value goes to `on_entry` as it completes, in file order.
// A header that is not an object is still read to its end, so that a syntax error anywhere wins.
class HeaderReader : public nlohmann::json_sax<json> {
 public:
  using OnEntry = std::function<void(const std::string& name, const json& value)>;
  // `expected` entries, a guess from the header's size, size the set of names once.
  HeaderReader(size_t expected, OnEntry on_entry) : on_entry_(std::move(on_entry)) { seen_.reserve(expected); }

  bool is_object() const { return is_object_; }
  // The first name given twice, or "": nlohmann would keep the last, so it is an error here.
  const std::string& duplicate() const { return duplicate_; }
  size_t error_byte() const { return error_byte_; }

  bool null() override { return Value(nullptr); }
  bool boolean(bool v) override { return Value(v); }
  bool number_integer(number_integer_t v) override { return Value(v); }
  bool number_unsigned(number_unsigned_t v) override { return Value(v); }
  bool number_float(number_float_t v, const string_t&) override { return Value(v); }
  bool string(string_t& v) override { return Value(std::move(v)); }
  bool binary(binary_t& v) override { return Value(json::binary(std::move(v))); }
  bool start_object(std::size_t) override { return Open(json::object()); }
  bool start_array(std::size_t) override { return Open(json::array()); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    if (depth_ == 1 && is_object_) {
      // The names stay in a deque, whose elements never move, so the set can hold views of them.
      names_.push_back(std::move(k));
      if (!seen_.insert(names_.back()).second && duplicate_.empty()) duplicate_ = names_.back();
    } else if (!open_.empty()) {
      open_.back().key = std::move(k);
    }
    return true;
  }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception&) override {
    // Counted from 1, as json::parse_error's byte; 0-based here.
    error_byte_ = byte > 0 ? byte - 1 : 0;
    return false;
  }

 private:
  struct Container {
    json* value;
    std::string key;  // of the next member, for objects
  };

  // Where a new value goes: the entry itself, or a member of the innermost open container.
  json* Slot() {
    if (open_.empty()) return &entry_;
    json& top = *open_.back().value;
    if (top.is_array()) {
      top.push_back(nullptr);
      return &top.back();
    }
    return &top[open_.back().key];
  }
  bool Collecting() const { return is_object_ && depth_ >= 1; }
  template <typename V>
  bool Value(V&& v) {
    if (Collecting()) {
      *Slot() = json(std::forward<V>(v));
      if (open_.empty()) Finish();
    }
    return true;
  }
  bool Open(json&& empty) {
    if (depth_ == 0) {
      is_object_ = empty.is_object();
    } else if (Collecting()) {
      json* slot = Slot();
      *slot = std::move(empty);
      open_.push_back({slot, {}});
    }
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    if (Collecting() && !open_.empty()) {
      open_.pop_back();
      if (open_.empty()) Finish();
    }
    return true;
  }
  void Finish() {
    on_entry_(names_.back(), entry_);
    entry_ = nullptr;
  }

  OnEntry on_entry_;
  size_t depth_ = 0;
  bool is_object_ = false;
  json entry_;
  std::vector<Container> open_;
  std::deque<std::string> names_;
  std::unordered_set<std::string_view> seen_;
  std::string duplicate_;
  size_t error_byte_ = 0;
};

}  // namespace

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

std::string DescribeSafeTensor(const SafeTensor& t) { return std::string(SafeDTypeName(t.dtype)) + " " + ShapeText(t.shape); }

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
  Status first_error;          // of the entry with the smallest name, as a walk in name order finds
  std::string first_error_name;
  // An entry takes at least ~60 bytes ("name": {"dtype": ..., "shape": [], "data_offsets": [0, 0]}).
  HeaderReader reader(n / 64, [&](const std::string& name, const json& v) {
    if (!first_error.ok() && first_error_name < name) return;
    Status st;
    if (name == "__metadata__") {
      bool strings = v.is_object();
      for (auto it = v.begin(); strings && it != v.end(); ++it) strings = it->is_string();
      if (!strings) st = Status::InvalidInput(file + ": __metadata__ is not an object of strings");
      for (auto it = v.begin(); st.ok() && it != v.end(); ++it) (*metadata)[it.key()] = it->get<std::string>();
    } else {
      SafeTensor t;
      uint64_t begin = 0;
      st = ParseEntry(name, v, data_bytes, &t, &begin).WithContext(file);
      if (st.ok()) {
        t.data = base + begin;
        found.emplace_back(begin, std::move(t));
      }
    }
    if (!st.ok()) {
      first_error = st;
      first_error_name = name;
    }
  });
  if (!json::sax_parse(data + 8, data + 8 + n, &reader))
    return Status::InvalidInput(file + ": header is not valid JSON (at byte " + std::to_string(8 + reader.error_byte()) + ")");
  if (!reader.is_object()) return Status::InvalidInput(file + ": header is not a JSON object");
  if (!reader.duplicate().empty()) return Status::InvalidInput(file + ": " + Quoted(reader.duplicate()) + " is listed twice");
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
      return Status::InvalidInput(file + ": " + Quoted(cur.name) + ": data_offsets [" + std::to_string(cb) + ", " +
                                  std::to_string(cb + cur.bytes) + "] overlap " + Quoted(prev.name) + " at [" +
                                  std::to_string(pb) + ", " + std::to_string(pb + prev.bytes) + "]");
  }
  tensors->reserve(found.size());
  for (auto& [b, t] : found) tensors->push_back(std::move(t));
  return Status::OK();
}

Status SafeTensorsFile::Open(const std::string& path) {
  PALETTIZE_RETURN_IF_ERROR(file_.Open(path));
  PALETTIZE_RETURN_IF_ERROR(ParseSafeTensors(file_.data(), file_.size(), path, &tensors_, &metadata_));
  header_end_ = 8 + Load<uint64_t>(file_.data());  // checked by ParseSafeTensors
  by_name_.clear();
  by_name_.reserve(tensors_.size());
  for (size_t i = 0; i < tensors_.size(); ++i) by_name_.emplace(tensors_[i].name, i);
  return Status::OK();
}

const SafeTensor* SafeTensorsFile::Find(const std::string& name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace palettize
