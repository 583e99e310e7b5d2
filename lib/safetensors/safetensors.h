// safetensors: a read-only view of the tensors of a .safetensors file (the format Hugging Face and
// most training code save). Layout:
//
//   [8 bytes]  N, unsigned little-endian: the length of the header
//   [N bytes]  header: a JSON object, UTF-8, possibly padded with trailing spaces
//                {"__metadata__": {"k": "v", ...},               (optional, strings only)
//                 "<name>": {"dtype": "F16", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//   [rest]     the data: each tensor's elements, row-major little-endian, at
//              [8 + N + begin, 8 + N + end)
//
// Every field is checked when the file is opened; an error is one line naming the file and the
// tensor ("s.safetensors: tensor 'w': data_offsets [0, 48] hold 48 bytes, but F16 [4, 4] needs 32").
// Tensors may leave holes between them but never overlap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "palettize/status.h"
#include "safetensors/name_index.h"
#include "util/file.h"

namespace palettize {

// The dtypes read; the names are the format's. Fixed by the format.
enum class SafeDType { kBool, kU8, kI8, kU16, kI16, kF16, kBF16, kU32, kI32, kF32, kU64, kI64, kF64 };

const char* SafeDTypeName(SafeDType t);
size_t SafeDTypeSize(SafeDType t);

struct SafeTensor {
  std::string name;
  SafeDType dtype = SafeDType::kF32;
  std::vector<uint64_t> shape;
  uint64_t elements = 1;
  const uint8_t* data = nullptr;  // elements * SafeDTypeSize(dtype) bytes, into the file's map
  uint64_t bytes = 0;

  // Element i as a double (exact for every dtype but 64-bit integers beyond 2^53).
  double At(uint64_t i) const;
  // Elements [begin, begin + n) as doubles into out[0..n).
  void Read(uint64_t begin, uint64_t n, double* out) const;
};

// "F16 [4, 4]"
std::string DescribeSafeTensor(const SafeTensor& t);

// Parses and checks a whole file held in memory. `file` names it in errors. Tensors are listed in
// the order of their data; `data` pointers point into [data, data + size).
Status ParseSafeTensors(const uint8_t* data, size_t size, const std::string& file,
                        std::vector<SafeTensor>* tensors, std::map<std::string, std::string>* metadata);

// A .safetensors file, memory-mapped and checked.
class SafeTensorsFile {
 public:
  Status Open(const std::string& path);

  const std::string& path() const { return file_.path(); }
  // The whole file; its first 8 + N bytes are the length and the header.
  const MappedFile& mapped() const { return file_; }
  uint64_t header_end() const { return header_end_; }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // nullptr when there is no tensor of that name.
  const SafeTensor* Find(const std::string& name) const;

 private:
  MappedFile file_;
  uint64_t header_end_ = 0;
  std::vector<SafeTensor> tensors_;
  NameIndex by_name_;  // views of tensors_' names, numbered as tensors_
  std::map<std::string, std::string> metadata_;
};

}  // namespace palettize
