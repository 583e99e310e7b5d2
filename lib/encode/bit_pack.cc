#include "encode/bit_pack.h"

#include <cstring>

namespace palettize {

void PackBits(const uint8_t* indices, uint64_t n, int nbits, uint8_t* out) {
  const uint64_t bytes = PackedSize(n, nbits);
  if (nbits == 8) {
    std::memcpy(out, indices, n);
    return;
  }
  std::memset(out, 0, bytes);
  // A 64-bit accumulator flushed a byte at a time: nbits <= 8 never overflows it.
  uint64_t acc = 0;
  int filled = 0;
  uint64_t pos = 0;
  for (uint64_t i = 0; i < n; ++i) {
    acc |= uint64_t(indices[i]) << filled;
    filled += nbits;
    while (filled >= 8) {
      out[pos++] = uint8_t(acc);
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) out[pos] = uint8_t(acc);
}

}  // namespace palettize
