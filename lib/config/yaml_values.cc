#include "config/yaml_values.h"

#include <cctype>
#include <cstdio>

namespace palettize {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string OneLine(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

int LineOf(const Node& n) { return n.Mark().line >= 0 ? n.Mark().line + 1 : 1; }

int ValueLine(const Node& key, const Node& value) { return value.IsScalar() ? LineOf(value) : LineOf(key); }

bool IsPlain(const Node& n, const char* explicit_tag) {
  return n.IsScalar() && (n.Tag() == "?" || n.Tag() == explicit_tag);
}

bool AsInt(const Node& n, int64_t* out) {
  if (!IsPlain(n, "tag:yaml.org,2002:int")) return false;
  const std::string& s = n.Scalar();
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  if (i == s.size()) return false;
  if (s[i] == '0' && s.size() > i + 1) return false;
  uint64_t v = 0;
  for (size_t j = i; j < s.size(); ++j) {
    if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
    v = v * 10 + uint64_t(s[j] - '0');
    if (v > uint64_t(INT64_MAX)) return false;
  }
  *out = s[0] == '-' ? -int64_t(v) : int64_t(v);
  return true;
}

bool AsBool(const Node& n, bool* out) {
  if (!IsPlain(n, "tag:yaml.org,2002:bool")) return false;
  static const char* const kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* const kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (const char* t : kTrue) {
    if (n.Scalar() == t) {
      *out = true;
      return true;
    }
  }
  for (const char* f : kFalse) {
    if (n.Scalar() == f) {
      *out = false;
      return true;
    }
  }
  return false;
}

std::string Show(const Node& n) {
  if (n.IsNull()) return "null";
  if (n.IsSequence()) return "a sequence";
  if (n.IsMap()) return "a mapping";
  std::string s = n.Scalar();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  s = OneLine(s);
  return n.Tag() == "!" ? "\"" + s + "\"" : s;
}

std::vector<std::pair<Node, Node>> Pairs(const Node& map) { return map.Pairs(); }

}  // namespace palettize
