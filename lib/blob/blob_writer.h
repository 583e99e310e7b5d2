// Streaming writer of a fresh weight.bin (layout in blob/blob_format.h): blobs are appended one at
// a time, each record 64-byte aligned, and the header's count is filled in by Finish().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

class BlobWriter {
 public:
  BlobWriter() = default;
  ~BlobWriter();
  BlobWriter(const BlobWriter&) = delete;
  BlobWriter& operator=(const BlobWriter&) = delete;

  Status Open(const std::string& path);

  // Appends one blob and returns the offset of its metadata record, which MIL values refer to.
  // `padding_bits` is the unused tail of the last byte for sub-byte dtypes (0 otherwise).
  Status Append(uint32_t blob_dtype, const void* data, uint64_t size, uint64_t padding_bits,
                uint64_t* metadata_offset);

  // Writes the header's blob count, flushes and closes. The file is incomplete until this succeeds.
  Status Finish();

  uint32_t count() const { return count_; }

 private:
  Status Write(const void* data, size_t size);
  Status WriteOut(const uint8_t* p, size_t n);  // to the file, now

  std::string path_;
  int fd_ = -1;
  // Small records (metadata, padding) are gathered here and written with the data after them, so
  // that a weight.bin is written in few large calls; the bytes on disk are the same either way.
  std::vector<uint8_t> buffer_;
  uint64_t position_ = 0;
  uint32_t count_ = 0;
};

}  // namespace palettize
