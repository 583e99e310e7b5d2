#include "report/json_text.h"

#include <utility>

namespace palettize {

namespace {

// The length of the valid UTF-8 sequence starting at s[i] (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF), or 0 when there is none.
size_t ValidSequence(const std::string& s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  if (b < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < n || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

bool IsValidUtf8(const std::string& s) {
  for (size_t i = 0, n; i < s.size(); i += n)
    if ((n = ValidSequence(s, i)) == 0) return false;
  return true;
}

// Escapes every string and key of `v` in place.
void EscapeTree(nlohmann::ordered_json& v) {
  if (v.is_string()) {
    std::string& s = v.get_ref<std::string&>();
    if (!IsValidUtf8(s)) s = EscapeInvalidUtf8(s);
  } else if (v.is_array()) {
    for (auto& item : v) EscapeTree(item);
  } else if (v.is_object()) {
    bool keys_valid = true;
    for (auto& [key, item] : v.items()) {
      keys_valid = keys_valid && IsValidUtf8(key);
      EscapeTree(item);
    }
    if (keys_valid) return;
    nlohmann::ordered_json fixed = nlohmann::ordered_json::object();
    for (auto& [key, item] : v.items()) fixed[EscapeInvalidUtf8(key)] = std::move(item);
    v = std::move(fixed);
  }
}

}  // namespace

std::string EscapeInvalidUtf8(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0, n; i < s.size(); i += n) {
    n = ValidSequence(s, i);
    if (n > 0) {
      out.append(s, i, n);
      continue;
    }
    const unsigned char b = static_cast<unsigned char>(s[i]);
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 15];
    n = 1;
  }
  return out;
}

std::string JsonText(const nlohmann::ordered_json& doc) {
  nlohmann::ordered_json copy = doc;
  EscapeTree(copy);
  return copy.dump(2) + "\n";
}

}  // namespace palettize
