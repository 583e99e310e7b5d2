// Fuzzes the .npz reader (lib/npy/): the input is an .npz file. Every array the reader accepts has
// its first and last element read (ASan checks they lie inside the input or the inflated bytes),
// and is written again by NpzBytes: that file must parse to the same names, dtypes, shapes and
// bytes (a __builtin_trap() otherwise).
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_targets.h"
#include "npy/npz.h"

namespace palettize {

namespace {

volatile double g_sink;

}  // namespace

int FuzzNpz(const uint8_t* data, size_t size) {
  std::vector<NpyArray> arrays;
  std::vector<std::vector<uint8_t>> inflated;
  if (!ParseNpz(data, size, "fuzz.npz", &arrays, &inflated).ok()) return 0;
  std::vector<NpyOutArray> out;
  for (const NpyArray& a : arrays) {
    if (a.elements > 0) {
      g_sink = a.At(0);
      g_sink = a.At(a.elements - 1);
    }
    const size_t bytes = size_t(a.elements * NpyDTypeSize(a.dtype));
    out.push_back({a.name, a.dtype, a.shape, std::string(reinterpret_cast<const char*>(a.data), bytes)});
  }
  std::string again;
  if (!NpzBytes(out, "fuzz.npz", &again).ok()) return 0;  // a name or size only zip64 could hold
  std::vector<NpyArray> back;
  std::vector<std::vector<uint8_t>> back_inflated;
  if (!ParseNpz(reinterpret_cast<const uint8_t*>(again.data()), again.size(), "again.npz", &back,
                &back_inflated)
           .ok())
    __builtin_trap();
  if (back.size() != arrays.size()) __builtin_trap();
  for (size_t i = 0; i < back.size(); ++i) {
    const NpyArray &a = arrays[i], &b = back[i];
    if (a.name != b.name || a.dtype != b.dtype || a.shape != b.shape || a.elements != b.elements)
      __builtin_trap();
    if (std::memcmp(a.data, b.data, size_t(a.elements * NpyDTypeSize(a.dtype))) != 0) __builtin_trap();
  }
  return 0;
}

}  // namespace palettize
