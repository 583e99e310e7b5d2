// Validating reader over the bytes of a weight.bin (layout in blob/blob_format.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "palettize/status.h"

namespace palettize {

struct BlobView {
  uint64_t metadata_offset = 0;
  uint32_t blob_dtype = 0;
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  uint64_t padding_bits = 0;  // meaningful for sub-byte dtypes only
};

class BlobReader {
 public:
  // Checks the header. `data` must outlive the reader; `name` prefixes every error (the path).
  Status Open(const uint8_t* data, size_t size, std::string name);

  // Checks the record at `metadata_offset`: alignment, sentinel, dtype code, and that the data
  // lies inside the file. The caller checks dtype and size against what the MIL type expects.
  Status Read(uint64_t metadata_offset, BlobView* out) const;

  uint32_t count() const { return count_; }
  const std::string& name() const { return name_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string name_;
  uint32_t count_ = 0;
};

// Expected size_in_bytes of a blob holding `elements` values of `bits` each.
// Returns false on overflow.
bool BlobDataSize(uint64_t elements, int bits, uint64_t* bytes);

}  // namespace palettize
