#include "util/digest.h"

#include <cstdio>
#include <cstring>

namespace palettize {

namespace {
constexpr uint64_t kPrime = 1099511628211ull;
}  // namespace

Digest& Digest::Update(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    uint64_t w = 0;
    for (int b = 7; b >= 0; --b) w = (w << 8) | p[k + size_t(b)];  // little-endian on any host
    h_ = (h_ ^ w) * kPrime;
  }
  for (; k < n; ++k) h_ = (h_ ^ p[k]) * kPrime;
  return *this;
}

Digest& Digest::Update(const std::string& s) {
  Update(uint64_t(s.size()));
  return Update(s.data(), s.size());
}

Digest& Digest::Update(uint64_t v) {
  unsigned char b[8];
  for (int k = 0; k < 8; ++k) b[k] = static_cast<unsigned char>(v >> (8 * k));
  return Update(b, 8);
}

Digest& Digest::Update(double v) {
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  return Update(bits);
}

std::string Digest::Hex() const {
  char text[32];
  std::snprintf(text, sizeof text, "fnv1a64:%016llx", static_cast<unsigned long long>(h_));
  return text;
}

}  // namespace palettize
