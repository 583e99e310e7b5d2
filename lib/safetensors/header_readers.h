// The two SAX readers of a safetensors header (safetensors.cc: ParseSafeTensors), over
// nlohmann's event interface: the fast one for entries of the usual form, and the general one
// that words every error from JSON values. Both catch a name given twice, which nlohmann alone
// would not.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "safetensors/name_index.h"

namespace palettize {
namespace safetensors_header {

using json = nlohmann::json;

// What both header readers share: the names of the entries, each checked against those before
// (nlohmann would keep the last of two, so a repeat is an error here), and where a syntax error
// is. The index holds views of the names, which stay in a deque, whose elements never move.
class HeaderEvents : public nlohmann::json_sax<json> {
 public:
  // The first name given twice, or "".
  const std::string& duplicate() const { return duplicate_; }
  size_t error_byte() const { return error_byte_; }
  bool parse_error(std::size_t byte, const std::string&, const nlohmann::detail::exception&) override {
    error_byte_ = byte > 0 ? byte - 1 : 0;  // counted from 1, as json::parse_error's byte
    return false;
  }

 protected:
  // `expected` entries, a guess from the header's size, size the set of names once.
  explicit HeaderEvents(size_t expected) : seen_(expected) {}
  const std::string& AddName(std::string&& name) {
    names_.push_back(std::move(name));
    if (seen_.Insert(names_.back()) != NameIndex::kNone && duplicate_.empty()) duplicate_ = names_.back();
    return names_.back();
  }
  const std::string& name() const { return names_.back(); }

 private:
  std::deque<std::string> names_;
  NameIndex seen_;
  std::string duplicate_;
  size_t error_byte_ = 0;
};

// An entry of the usual form, its fields as read.
struct EntryFields {
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t offsets[2] = {0, 0};
};

// The fast reader: entries of the usual form ({"dtype": "F16", "shape": [2, 3], "data_offsets":
// [b, e]}, keys in any order) and a __metadata__ object of strings go to the callbacks as they
// complete, with no JSON value built. Anything else (another key or type, a header that is not
// an object) stops it with fallback() true: HeaderReader then reads the header again and words
// every error from JSON values. Syntax errors and repeated names it reports itself.
class FastHeaderReader : public HeaderEvents {
 public:
  using OnEntry = std::function<void(const std::string& name, EntryFields& fields)>;
  using OnMetadata = std::function<void(std::string&& key, std::string&& value)>;
  FastHeaderReader(size_t expected, OnEntry on_entry, OnMetadata on_metadata)
      : HeaderEvents(expected), on_entry_(std::move(on_entry)), on_metadata_(std::move(on_metadata)) {}

  bool fallback() const { return fallback_; }

  bool null() override { return Fallback(); }
  bool boolean(bool) override { return Fallback(); }
  bool number_integer(number_integer_t) override { return Fallback(); }
  bool number_float(number_float_t, const string_t&) override { return Fallback(); }
  bool binary(binary_t&) override { return Fallback(); }
  bool number_unsigned(number_unsigned_t v) override {
    if (depth_ != 3) return Fallback();
    if (field_ == kShape)
      fields_.shape.push_back(v);
    else if (offsets_ < 2)
      fields_.offsets[offsets_] = v;
    if (field_ == kOffsets) ++offsets_;
    return true;
  }
  bool string(string_t& v) override {
    if (depth_ != 2) return Fallback();
    if (field_ == kMetadata)
      on_metadata_(std::move(metadata_key_), std::move(v));
    else if (field_ == kDType)
      fields_.dtype = std::move(v), have_ |= 1;
    else
      return Fallback();
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      AddName(std::move(k));
    } else if (metadata_) {
      metadata_key_ = std::move(k);
      field_ = kMetadata;
    } else {
      field_ = k == "dtype" ? kDType : k == "shape" ? kShape : k == "data_offsets" ? kOffsets : kOther;
      if (field_ == kOther) return Fallback();
    }
    return true;
  }
  bool start_object(std::size_t) override {
    if (depth_ > 1) return Fallback();
    if (depth_++ == 1) {
      metadata_ = name() == "__metadata__";
      fields_.shape.clear();
      have_ = 0;
    }
    return true;
  }
  bool end_object() override {
    if (--depth_ == 1 && !metadata_) {
      if (have_ != 7) return Fallback();  // a field missing: HeaderReader names it
      on_entry_(name(), fields_);
    }
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ != 2 || (field_ != kShape && field_ != kOffsets)) return Fallback();
    ++depth_;
    if (field_ == kShape)
      fields_.shape.clear(), have_ |= 2;
    else
      offsets_ = 0, have_ |= 4;
    return true;
  }
  bool end_array() override {
    --depth_;
    return field_ == kShape || offsets_ == 2 ? true : Fallback();
  }

 private:
  enum Field { kDType, kShape, kOffsets, kMetadata, kOther };
  bool Fallback() {
    fallback_ = true;
    return false;
  }

  OnEntry on_entry_;
  OnMetadata on_metadata_;
  bool fallback_ = false;
  int depth_ = 0;          // 1 in the header, 2 in an entry, 3 in a list
  bool metadata_ = false;  // the entry is __metadata__
  Field field_ = kOther;
  int have_ = 0;  // fields seen: 1 dtype, 2 shape, 4 data_offsets
  size_t offsets_ = 0;
  EntryFields fields_;
  std::string metadata_key_;
};

// The general reader: holds one entry's value at a time as JSON and hands it to `on_entry` as it
// completes, in file order. A header that is not an object is still read to its end, so that a
// syntax error anywhere wins. (nlohmann's parse with a callback, used before to catch repeated
// names, scans the whole header object at the end of every entry: quadratic, 100k tensors took
// minutes.)
class HeaderReader : public HeaderEvents {
 public:
  using OnEntry = std::function<void(const std::string& name, const json& value)>;
  HeaderReader(size_t expected, OnEntry on_entry) : HeaderEvents(expected), on_entry_(std::move(on_entry)) {}

  bool is_object() const { return is_object_; }

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
    if (depth_ == 1 && is_object_)
      AddName(std::move(k));
    else if (!open_.empty())
      open_.back().key = std::move(k);
    return true;
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
    on_entry_(name(), entry_);
    entry_ = nullptr;
  }

  OnEntry on_entry_;
  size_t depth_ = 0;
  bool is_object_ = false;
  json entry_;
  std::vector<Container> open_;
};

}  // namespace safetensors_header
}  // namespace palettize
