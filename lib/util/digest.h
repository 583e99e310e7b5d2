// A 64-bit digest of bytes, for telling inputs apart (the costs files of a sharded measured sweep,
// alloc/costs_file.h), not for security: FNV-1a 64 (offset basis 14695981039346656037, prime
// 1099511628211) over the input's little-endian 8-byte words, then its last bytes one at a time.
// Words rather than bytes make it about eight times faster on a model's weight files; the value
// depends only on the bytes and on how they are split across Update calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace palettize {

class Digest {
 public:
  Digest& Update(const void* data, size_t n);
  Digest& Update(const std::string& s);  // its size first, so "ab"+"c" differs from "a"+"bc"
  Digest& Update(uint64_t v);
  Digest& Update(double v);  // its bits
  uint64_t value() const { return h_; }
  // "fnv1a64:" and 16 lowercase hex digits.
  std::string Hex() const;

 private:
  uint64_t h_ = 14695981039346656037ull;
};

}  // namespace palettize
