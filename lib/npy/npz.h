// NumPy .npz files: a zip archive (npy/zip_archive.h) of .npy arrays (npy/npy_header.h), one per
// entry NAME.npy, as numpy.savez (stored) and numpy.savez_compressed (deflate) write them.
// Reading checks every field of both layers; an error is one line naming the file and the entry
// ("in.npz: entry 'x.npy': .npy header: fortran_order is True; only C-order arrays are read").
// Writing stores the arrays uncompressed, staged beside the target and renamed into place
// (util/staging.h); numpy.load reads the result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "npy/npy_header.h"
#include "palettize/status.h"
#include "util/file.h"

namespace palettize {

struct NpyArray {
  std::string name;  // the entry's name without ".npy"
  NpyDType dtype = NpyDType::kF4;
  std::vector<uint64_t> shape;
  uint64_t elements = 1;
  const uint8_t* data = nullptr;  // elements * NpyDTypeSize(dtype) bytes, little-endian, maybe unaligned

  // Element i as a double (exact but for 64-bit integers beyond 2^53).
  double At(uint64_t i) const;
};

// The arrays of an .npz held in memory, in the archive's order. `file` names it in errors. The
// arrays point into `data`, or into `inflated` for deflated entries.
Status ParseNpz(const uint8_t* data, size_t size, const std::string& file, std::vector<NpyArray>* arrays,
                std::vector<std::vector<uint8_t>>* inflated);

// An .npz file, memory-mapped and checked.
class NpzFile {
 public:
  Status Open(const std::string& path);
  const std::vector<NpyArray>& arrays() const { return arrays_; }
  // nullptr when there is no array of that name.
  const NpyArray* Find(const std::string& name) const;

 private:
  MappedFile file_;
  std::vector<std::vector<uint8_t>> inflated_;
  std::vector<NpyArray> arrays_;
};

// An array to write: `bytes` holds its elements, little-endian, C order.
struct NpyOutArray {
  std::string name;
  NpyDType dtype = NpyDType::kF4;
  std::vector<uint64_t> shape;
  std::string bytes;
};

// The .npz file's bytes for `arrays` (stored entries NAME.npy). `file` names it in errors.
Status NpzBytes(const std::vector<NpyOutArray>& arrays, const std::string& file, std::string* out);

// Writes `arrays` to `path`: assembled beside it and renamed into place, so that an error leaves
// nothing at `path` (or the previous file whole). Without `overwrite` an existing `path` is
// AlreadyExists. Which paths may be written (never an input) is the caller's check.
Status WriteNpz(const std::string& path, const std::vector<NpyOutArray>& arrays, bool overwrite);

}  // namespace palettize
