// Layout and rules: npy_header.h.
#include "npy/npy_header.h"

#include <cstring>

namespace palettize {

namespace {

struct DTypeEntry {
  NpyDType type;
  const char* code;  // after the byte-order character
  const char* name;
  size_t size;
};
constexpr DTypeEntry kDTypes[] = {
    {NpyDType::kBool, "b1", "bool", 1},  {NpyDType::kI1, "i1", "int8", 1},
    {NpyDType::kI2, "i2", "int16", 2},   {NpyDType::kI4, "i4", "int32", 4},
    {NpyDType::kI8, "i8", "int64", 8},   {NpyDType::kU1, "u1", "uint8", 1},
    {NpyDType::kU2, "u2", "uint16", 2},  {NpyDType::kU4, "u4", "uint32", 4},
    {NpyDType::kU8, "u8", "uint64", 8},  {NpyDType::kF2, "f2", "float16", 2},
    {NpyDType::kF4, "f4", "float32", 4}, {NpyDType::kF8, "f8", "float64", 8},
};

const DTypeEntry& Entry(NpyDType t) { return kDTypes[size_t(t)]; }

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// A cursor over the header's dict literal; every Parse* leaves `at` after what it read.
struct Literal {
  const char* p;
  size_t n;
  size_t at = 0;

  void Space() {
    while (at < n && (p[at] == ' ' || p[at] == '\t' || p[at] == '\n' || p[at] == '\r')) ++at;
  }
  bool Take(char c) {
    Space();
    if (at < n && p[at] == c) return ++at, true;
    return false;
  }
  bool Word(const char* w) {
    Space();
    const size_t len = std::strlen(w);
    if (n - at >= len && std::memcmp(p + at, w, len) == 0) return at += len, true;
    return false;
  }
  // A quoted string without escapes (every key and descr numpy writes).
  bool String(std::string* out) {
    Space();
    if (at >= n || (p[at] != '\'' && p[at] != '"')) return false;
    const char q = p[at++];
    const size_t begin = at;
    while (at < n && p[at] != q && p[at] != '\\') ++at;
    if (at >= n || p[at] != q) return false;
    out->assign(p + begin, at - begin);
    return ++at, true;
  }
  // A non-negative integer below 2^63 (Python 2 wrote a trailing L).
  bool Integer(uint64_t* out) {
    Space();
    if (at >= n || p[at] < '0' || p[at] > '9') return false;
    uint64_t v = 0;
    while (at < n && p[at] >= '0' && p[at] <= '9') {
      if (v > (uint64_t(INT64_MAX) - uint64_t(p[at] - '0')) / 10) return false;
      v = v * 10 + uint64_t(p[at++] - '0');
    }
    if (at < n && p[at] == 'L') ++at;
    *out = v;
    return true;
  }
};

Status Bad(const std::string& what, const std::string& why) {
  return Status::InvalidInput(what + ": .npy header: " + why);
}

Status ParseDescr(const std::string& descr, const std::string& what, NpyDType* out) {
  if (descr.size() == 3) {
    const char order = descr[0];
    for (const DTypeEntry& e : kDTypes) {
      if (descr.compare(1, 2, e.code) != 0) continue;
      if (order == '<' || order == '=' || (order == '|' && e.size == 1) || (order == '>' && e.size == 1)) {
        *out = e.type;
        return Status::OK();
      }
      if (order == '>')
        return Bad(what, "descr '" + descr + "' is big-endian; only little-endian arrays are read");
    }
  }
  std::string all;
  for (const DTypeEntry& e : kDTypes) all += std::string(all.empty() ? "" : ", ") + e.code;
  return Bad(what, "descr '" + descr + "' is not one of " + all + " (little-endian)");
}

// The shape tuple: "()", "(3,)", "(2, 3)".
Status ParseShape(Literal& lit, const std::string& what, std::vector<uint64_t>* shape) {
  if (!lit.Take('(')) return Bad(what, "shape is not a tuple of non-negative integers");
  shape->clear();
  if (lit.Take(')')) return Status::OK();
  while (true) {
    uint64_t d;
    if (!lit.Integer(&d)) return Bad(what, "shape is not a tuple of non-negative integers");
    if (shape->size() == kMaxNpyRank)
      return Bad(what, "shape has more than " + std::to_string(kMaxNpyRank) + " dimensions");
    shape->push_back(d);
    if (lit.Take(')')) return Status::OK();
    if (!lit.Take(',')) return Bad(what, "shape is not a tuple of non-negative integers");
    if (lit.Take(')')) return Status::OK();
  }
}

Status ParseDict(Literal& lit, const std::string& what, NpyHeader* out) {
  if (!lit.Take('{')) return Bad(what, "not a dict literal");
  bool have_descr = false, have_order = false, have_shape = false;
  while (!lit.Take('}')) {
    std::string key;
    if (!lit.String(&key) || !lit.Take(':')) return Bad(what, "not a dict literal");
    if (key == "descr" && !have_descr) {
      std::string descr;
      lit.Space();
      if (lit.at < lit.n && lit.p[lit.at] == '[')
        return Bad(what, "descr is a structured dtype; only plain numeric and bool arrays are read");
      if (!lit.String(&descr)) return Bad(what, "descr is not a string");
      PALETTIZE_RETURN_IF_ERROR(ParseDescr(descr, what, &out->dtype));
      have_descr = true;
    } else if (key == "fortran_order" && !have_order) {
      if (lit.Word("True")) return Bad(what, "fortran_order is True; only C-order arrays are read");
      if (!lit.Word("False")) return Bad(what, "fortran_order is not True or False");
      have_order = true;
    } else if (key == "shape" && !have_shape) {
      PALETTIZE_RETURN_IF_ERROR(ParseShape(lit, what, &out->shape));
      have_shape = true;
    } else {
      return Bad(what, "key '" + key + "' is repeated or not one of descr, fortran_order, shape");
    }
    if (lit.Take('}')) break;
    if (!lit.Take(',')) return Bad(what, "not a dict literal");
  }
  if (!have_descr || !have_order || !have_shape)
    return Bad(what, std::string("no ") + (!have_descr ? "descr" : !have_order ? "fortran_order" : "shape"));
  lit.Space();
  if (lit.at != lit.n) return Bad(what, "bytes after the dict literal");
  return Status::OK();
}

}  // namespace

const char* NpyDTypeName(NpyDType t) { return Entry(t).name; }
size_t NpyDTypeSize(NpyDType t) { return Entry(t).size; }
const char* NpyDescr(NpyDType t) {
  static const char* const kDescr[] = {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1",
                                       "<u2", "<u4", "<u8", "<f2", "<f4", "<f8"};
  return kDescr[size_t(t)];
}

Status ParseNpyHeader(const uint8_t* data, size_t size, const std::string& what, NpyHeader* out) {
  *out = NpyHeader();
  if (size < kMagicSize + 4 || std::memcmp(data, kMagic, kMagicSize) != 0)
    return Status::InvalidInput(what + ": not a .npy array (no \\x93NUMPY magic)");
  const uint8_t major = data[6], minor = data[7];
  if (major < 1 || major > 3 || minor != 0)
    return Bad(what,
               "version " + std::to_string(major) + "." + std::to_string(minor) + " is not 1.0, 2.0 or 3.0");
  const size_t len_bytes = major == 1 ? 2 : 4;
  if (size < 8 + len_bytes) return Bad(what, "truncated before the header length");
  uint32_t len = 0;
  for (size_t i = 0; i < len_bytes; ++i) len |= uint32_t(data[8 + i]) << (8 * i);
  if (len > kMaxNpyHeaderBytes)
    return Bad(what, "length " + std::to_string(len) + " is over the limit of " +
                         std::to_string(kMaxNpyHeaderBytes) + " bytes");
  const uint64_t begin = 8 + len_bytes;
  if (len > size - begin)
    return Bad(what, "length " + std::to_string(len) + " runs past the end of the array (" +
                         std::to_string(size) + " bytes)");
  Literal lit{reinterpret_cast<const char*>(data + begin), len};
  PALETTIZE_RETURN_IF_ERROR(ParseDict(lit, what, out));
  const uint64_t itemsize = NpyDTypeSize(out->dtype);
  const uint64_t available = size - begin - len;
  out->elements = 1;
  for (const uint64_t d : out->shape) {
    // Compared with the bytes there are, so that the product never overflows.
    if (d != 0 && out->elements > available / itemsize / d) {
      out->elements = UINT64_MAX;
      break;
    }
    out->elements *= d;
  }
  std::string shape = "(";
  for (size_t i = 0; i < out->shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(out->shape[i]);
  if (out->elements == UINT64_MAX || out->elements * itemsize != available)
    return Status::InvalidInput(what + ": shape " + shape + ") of " + NpyDTypeName(out->dtype) +
                                " does not match the " + std::to_string(available) + " data bytes");
  out->data_offset = begin + len;
  return Status::OK();
}

std::string NpyHeaderBytes(NpyDType dtype, const std::vector<uint64_t>& shape) {
  std::string dict = std::string("{'descr': '") + NpyDescr(dtype) + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  dict += shape.size() == 1 ? ",), }" : "), }";
  // Padded with spaces and a final newline so that magic + version + length + header is a
  // multiple of 64 bytes (numpy's alignment).
  const size_t unpadded = kMagicSize + 2 + 2 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += char(dict.size() & 0xFF);
  out += char((dict.size() >> 8) & 0xFF);
  return out + dict;
}

}  // namespace palettize
