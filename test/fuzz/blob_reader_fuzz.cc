// Fuzzes the weight.bin reader (lib/blob/): the input is a weight.bin. Reads the chain of blobs
// from offset 64 the way a writer lays them out, and every 64-byte aligned offset in the first
// 4 KiB, touching the first and last byte of each blob the reader accepts (ASan checks they lie
// inside the input), and checks each against a MIL type of its dtype.
#include <algorithm>

#include "blob/blob_format.h"
#include "blob/blob_reader.h"
#include "fuzz_targets.h"
#include "mil/dtype.h"
#include "mil/tensor_data.h"

namespace palettize {

namespace {

volatile uint8_t g_sink;

void Touch(const BlobView& v) {
  if (v.size == 0) return;
  g_sink = v.data[0];
  g_sink = v.data[v.size - 1];
}

// Checks the blob against a rank-1 tensor of its own dtype, sized to match when it can be.
void CheckAgainstType(const BlobView& v) {
  const DTypeInfo* info = FindDTypeByBlobCode(v.blob_dtype);
  if (info == nullptr) __builtin_trap();  // Read() promised a known code
  TensorShape shape;
  shape.mil_type = info->mil_type;
  shape.bits = info->bits;
  shape.elements = info->bits > 0 ? v.size * 8 / uint64_t(info->bits) : 0;
  shape.dims = {shape.elements};
  (void)CheckBlobMatches(v, shape, "const 'fuzz'", "fuzz");
  uint64_t bytes;
  if (BlobDataSize(shape.elements, info->bits, &bytes) && bytes > v.size) __builtin_trap();
}

}  // namespace

int FuzzBlobReader(const uint8_t* data, size_t size) {
  BlobReader reader;
  if (!reader.Open(data, size, "weight.bin").ok()) return 0;
  BlobView v;
  uint64_t offset = kBlobHeaderSize;
  for (uint32_t i = 0; i < std::min<uint32_t>(reader.count(), 64); ++i) {
    if (!reader.Read(offset, &v).ok()) break;
    Touch(v);
    CheckAgainstType(v);
    const uint64_t end = uint64_t(v.data - data) + v.size;
    offset = (end + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment;
  }
  for (uint64_t o = 0; o < std::min<uint64_t>(size, 4096); o += kBlobAlignment) {
    if (reader.Read(o, &v).ok()) Touch(v);
  }
  (void)reader.Read(~uint64_t(0) - 63, &v);  // an offset near the top of the range
  return 0;
}

}  // namespace palettize
