#include "encode/bit_pack.h"

#include <cstring>

namespace palettize {

namespace {

// Eight elements fill exactly kBits bytes: they are gathered into one 64-bit word, without a
// branch, and its low kBits bytes stored least significant first (the stream is LSB-first on any
// host). A byte-at-a-time flush instead branched on every element, taken at a period the
// processor did not learn for 3 and 6 bits: a quarter of a 6-bit per_tensor run's CPU.
template <int kBits>
uint64_t PackBlocks(const uint8_t* indices, uint64_t n, uint8_t* out) {
  const uint64_t blocks = n / 8;
  for (uint64_t b = 0; b < blocks; ++b) {
    const uint8_t* in = indices + 8 * b;
    uint64_t acc = 0;
    for (int e = 0; e < 8; ++e) acc |= uint64_t(in[e]) << (e * kBits);
    uint8_t* o = out + uint64_t(kBits) * b;
    for (int byte = 0; byte < kBits; ++byte) o[byte] = uint8_t(acc >> (8 * byte));
  }
  return blocks * 8;
}

}  // namespace

void PackBits(const uint8_t* indices, uint64_t n, int nbits, uint8_t* out) {
  if (nbits == 8) {
    std::memcpy(out, indices, n);
    return;
  }
  uint64_t done = 0;
  switch (nbits) {
    case 1: done = PackBlocks<1>(indices, n, out); break;
    case 2: done = PackBlocks<2>(indices, n, out); break;
    case 3: done = PackBlocks<3>(indices, n, out); break;
    case 4: done = PackBlocks<4>(indices, n, out); break;
    case 5: done = PackBlocks<5>(indices, n, out); break;
    case 6: done = PackBlocks<6>(indices, n, out); break;
    case 7: done = PackBlocks<7>(indices, n, out); break;
    default: break;
  }
  // The last n % 8 elements (or all, for a width not listed): fewer than nbits whole bytes, each
  // flushed as it fills; the unused high bits of the last byte stay zero.
  uint8_t* tail = out + done / 8 * uint64_t(nbits);
  std::memset(tail, 0, PackedSize(n, nbits) - done / 8 * uint64_t(nbits));
  uint64_t acc = 0;
  int filled = 0;
  uint64_t pos = 0;
  for (uint64_t i = done; i < n; ++i) {
    acc |= uint64_t(indices[i]) << filled;
    filled += nbits;
    while (filled >= 8) {
      tail[pos++] = uint8_t(acc);
      acc >>= 8;
      filled -= 8;
    }
  }
  if (filled > 0) tail[pos] = uint8_t(acc);
}

}  // namespace palettize
