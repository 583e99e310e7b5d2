// One .npy array (NumPy's format, the entries of an .npz): its header, parsed and written.
//
//   [6 bytes]  magic "\x93NUMPY"
//   [2 bytes]  version major, minor: 1.0 (2-byte header length), 2.0 or 3.0 (4-byte; 3.0: UTF-8)
//   [2 or 4]   N, unsigned little-endian: the header's length
//   [N bytes]  header: a Python dict literal, padded with spaces and ended by '\n':
//                {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//   [rest]     the elements, in C order (fortran_order False), in the byte order descr names
//
// Read: descr '<' or '|' (or '=': little-endian here) followed by b1, i1, i2, i4, i8, u1, u2,
// u4, u8, f2, f4, f8; C order; rank at most kMaxNpyRank. Big-endian, structured, object and
// string dtypes, and Fortran order are each refused with one line saying so. Written: version
// 1.0, the header padded so that the data starts 64-byte aligned, as numpy writes it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

enum class NpyDType { kBool, kI1, kI2, kI4, kI8, kU1, kU2, kU4, kU8, kF2, kF4, kF8 };

// "<f4", "|b1": the descr numpy writes on a little-endian machine.
const char* NpyDescr(NpyDType t);
// "float32", "bool": numpy's name.
const char* NpyDTypeName(NpyDType t);
size_t NpyDTypeSize(NpyDType t);

// Limits of the reader: a longer header, a higher rank is a damaged or hostile file (numpy itself
// refuses headers over 10000 bytes by default, and arrays of more than 64 dimensions).
constexpr uint32_t kMaxNpyHeaderBytes = 65536;
constexpr size_t kMaxNpyRank = 64;

struct NpyHeader {
  NpyDType dtype = NpyDType::kF4;
  std::vector<uint64_t> shape;
  uint64_t elements = 1;
  uint64_t data_offset = 0;  // from the start of the .npy bytes
};

// Parses the header at the start of an .npy of `size` bytes and checks that the data that follows
// is exactly elements * itemsize bytes. `what` names the array in errors ("in.npz: entry 'x.npy'").
Status ParseNpyHeader(const uint8_t* data, size_t size, const std::string& what, NpyHeader* out);

// The magic, version, length and padded header of an array: its data follows.
std::string NpyHeaderBytes(NpyDType dtype, const std::vector<uint64_t>& shape);

}  // namespace palettize
