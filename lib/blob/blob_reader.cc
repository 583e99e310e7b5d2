#include "blob/blob_reader.h"

#include <cinttypes>
#include <cstdio>

#include "blob/blob_format.h"

namespace palettize {

namespace {
std::string U64(uint64_t v) { return std::to_string(v); }
}  // namespace

bool BlobDataSize(uint64_t elements, int bits, uint64_t* bytes) {
  uint64_t total_bits;
  if (__builtin_mul_overflow(elements, uint64_t(bits), &total_bits)) return false;
  *bytes = total_bits / 8 + (total_bits % 8 != 0);
  return true;
}

Status BlobReader::Open(const uint8_t* data, size_t size, std::string name) {
  data_ = data;
  size_ = size;
  name_ = std::move(name);
  if (size_ < kBlobHeaderSize)
    return Status::InvalidInput(name_ + ": header: file is " + U64(size_) +
                                " bytes, shorter than the 64-byte header");
  uint32_t version = LoadLE32(data_ + 4);
  if (version != kBlobStorageVersion)
    return Status::InvalidInput(name_ + ": header: version " + U64(version) + ", expected 2");
  count_ = LoadLE32(data_);
  return Status::OK();
}

Status BlobReader::Read(uint64_t metadata_offset, BlobView* out) const {
  const std::string where = name_ + ": blob at offset " + U64(metadata_offset);
  if (metadata_offset < kBlobHeaderSize || metadata_offset % kBlobAlignment != 0)
    return Status::InvalidInput(where + ": offset is not a 64-byte aligned position after the header");
  if (metadata_offset > size_ || size_ - metadata_offset < kBlobMetadataSize)
    return Status::InvalidInput(where + ": metadata past end of file (" + U64(size_) + " bytes)");
  const uint8_t* m = data_ + metadata_offset;
  uint32_t sentinel = LoadLE32(m);
  if (sentinel != kBlobSentinel) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08" PRIX32, sentinel);
    return Status::InvalidInput(where + ": sentinel " + hex + ", expected 0xDEADBEEF");
  }
  BlobView v;
  v.metadata_offset = metadata_offset;
  v.blob_dtype = LoadLE32(m + 4);
  v.size = LoadLE64(m + 8);
  uint64_t data_offset = LoadLE64(m + 16);
  if (!IsBlobDTypeCode(v.blob_dtype))
    return Status::InvalidInput(where + ": dtype: unknown code " + U64(v.blob_dtype));
  if (data_offset < metadata_offset + kBlobMetadataSize)
    return Status::InvalidInput(where + ": data offset " + U64(data_offset) + " overlaps its own metadata");
  if (data_offset > size_)
    return Status::InvalidInput(where + ": data offset " + U64(data_offset) + " past end of file (" +
                                U64(size_) + " bytes)");
  if (v.size > size_ - data_offset)
    return Status::InvalidInput(where + ": size " + U64(v.size) + " past end of file (" + U64(size_) +
                                " bytes)");
  // padding_size_in_bits holds garbage in pre-iOS18 files; only sub-byte readers look at it.
  v.padding_bits = LoadLE64(m + 24);
  v.data = data_ + data_offset;
  *out = v;
  return Status::OK();
}

}  // namespace palettize
