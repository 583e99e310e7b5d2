// weight.bin: MIL blob storage, version 2, little-endian (../shared/coreml-format.md section 2).
//
//   offset 0    header (64 bytes):  uint32 count | uint32 version (= 2) | 56 reserved bytes
//   offset 64   blob 0 metadata (64 bytes):
//                 0  uint32 sentinel (0xDEADBEEF)
//                 4  uint32 dtype               (blob dtype code, 1-17; MIL types: mil/dtype.cc)
//                 8  uint64 size_in_bytes       (sub-byte types: ceil(n * bits / 8))
//                16  uint64 data_offset         (absolute; = metadata offset + 64 when we write)
//                24  uint64 padding_size_in_bits (sub-byte types only, < 8)
//                32  4 x uint64 reserved        (garbage in files from older tools: never read)
//   offset 128  blob 0 data, then zero fill up to the next multiple of 64
//   ...         blob 1 metadata, blob 1 data, ...  (no padding after the last blob)
//
// A MIL value names a blob by the offset of its METADATA record.
#pragma once

#include <cstdint>

namespace palettize {

constexpr uint32_t kBlobStorageVersion = 2;
constexpr uint32_t kBlobSentinel = 0xDEADBEEF;
constexpr uint64_t kBlobHeaderSize = 64;
constexpr uint64_t kBlobMetadataSize = 64;
constexpr uint64_t kBlobAlignment = 64;

// Blob dtype codes (metadata offset 4) are 1 to 17, fixed by the format; mil/dtype.cc says which
// MIL type each one holds.
constexpr uint32_t kBlobDTypeFirst = 1;
constexpr uint32_t kBlobDTypeLast = 17;
inline bool IsBlobDTypeCode(uint32_t code) { return code >= kBlobDTypeFirst && code <= kBlobDTypeLast; }

inline uint32_t LoadLE32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline uint64_t LoadLE64(const uint8_t* p) { return uint64_t(LoadLE32(p)) | uint64_t(LoadLE32(p + 4)) << 32; }

inline void StoreLE32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

inline void StoreLE64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}

}  // namespace palettize
