// Sub-byte index packing, the layout of MIL's uint1..uint6 tensors and of the iOS16
// constexpr_lut_to_dense `indices` bytes: an LSB-first bit stream, row-major. Element i occupies
// bits [i*nbits, (i+1)*nbits), bit 0 being the least significant bit of byte 0; 3- and 6-bit
// elements may straddle two bytes; the unused high bits of the last byte are zero.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace palettize {

// Bytes needed for n elements of nbits each.
inline uint64_t PackedSize(uint64_t n, int nbits) { return (n * uint64_t(nbits) + 7) / 8; }

// Packs n indices (each < 2^nbits, nbits in 1..8) into PackedSize(n, nbits) bytes at `out`.
void PackBits(const uint8_t* indices, uint64_t n, int nbits, uint8_t* out);

// Reads element i of a packed stream.
inline uint8_t UnpackBits(const uint8_t* packed, uint64_t i, int nbits) {
  uint64_t bit = i * uint64_t(nbits);
  uint32_t window = packed[bit / 8];
  if ((bit % 8) + nbits > 8) window |= uint32_t(packed[bit / 8 + 1]) << 8;
  return uint8_t((window >> (bit % 8)) & ((1u << nbits) - 1));
}

}  // namespace palettize
