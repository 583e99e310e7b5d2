// weight.bin reader and writer: layout, alignment, and every malformed-file error, in memory.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "blob/blob_format.h"
#include "blob/blob_reader.h"
#include "blob/blob_writer.h"
#include "mil/dtype.h"
#include "test_util.h"
#include "util/file.h"

using namespace palettize;

namespace {

// A weight.bin with one fp16 blob of `n` elements at metadata offset 64.
std::vector<uint8_t> OneBlobFile(uint64_t n) {
  std::vector<uint8_t> f(128 + 2 * n, 0);
  StoreLE32(&f[0], 1);
  StoreLE32(&f[4], 2);
  StoreLE32(&f[64], kBlobSentinel);
  StoreLE32(&f[68], 1);  // fp16
  StoreLE64(&f[72], 2 * n);
  StoreLE64(&f[80], 128);
  for (size_t i = 96; i < 128; ++i) f[i] = 0xAB;  // reserved garbage, as coremltools 7 writes
  StoreLE64(&f[88], 0x1234);                      // garbage padding on a byte-aligned type
  return f;
}

Status ReadAt(const std::vector<uint8_t>& f, uint64_t offset, BlobView* v) {
  BlobReader r;
  PALETTIZE_RETURN_IF_ERROR(r.Open(f.data(), f.size(), "w.bin"));
  return r.Read(offset, v);
}

}  // namespace

TEST_CASE("blob reader accepts a valid file and ignores reserved fields") {
  auto f = OneBlobFile(10);
  BlobView v;
  REQUIRE(ReadAt(f, 64, &v).ok());
  CHECK(v.blob_dtype == 1);
  CHECK(v.size == 20);
  CHECK(v.data == f.data() + 128);
}

TEST_CASE("blob reader errors name the file, the blob and the field") {
  BlobView v;
  auto f = OneBlobFile(10);

  SECTION("short header") {
    std::vector<uint8_t> tiny(10, 0);
    BlobReader r;
    CHECK(r.Open(tiny.data(), tiny.size(), "w.bin").message() ==
          "w.bin: header: file is 10 bytes, shorter than the 64-byte header");
  }
  SECTION("wrong version") {
    StoreLE32(&f[4], 3);
    CHECK(ReadAt(f, 64, &v).message() == "w.bin: header: version 3, expected 2");
  }
  SECTION("wrong sentinel") {
    StoreLE32(&f[64], 0xDEADBEEE);
    CHECK(ReadAt(f, 64, &v).message() ==
          "w.bin: blob at offset 64: sentinel 0xDEADBEEE, expected 0xDEADBEEF");
  }
  SECTION("offset past the end") {
    CHECK(ReadAt(f, 4096, &v).message() ==
          "w.bin: blob at offset 4096: metadata past end of file (148 bytes)");
  }
  SECTION("unaligned offset") {
    CHECK(ReadAt(f, 65, &v).message() ==
          "w.bin: blob at offset 65: offset is not a 64-byte aligned position after the header");
  }
  SECTION("size past the end (truncated file)") {
    f.resize(140);
    CHECK(ReadAt(f, 64, &v).message() == "w.bin: blob at offset 64: size 20 past end of file (140 bytes)");
  }
  SECTION("data offset past the end") {
    StoreLE64(&f[80], 1 << 20);
    CHECK(ReadAt(f, 64, &v).message() ==
          "w.bin: blob at offset 64: data offset 1048576 past end of file (148 bytes)");
  }
  SECTION("absurd size does not overflow") {
    StoreLE64(&f[72], ~uint64_t(0));
    CHECK(ReadAt(f, 64, &v).message() ==
          "w.bin: blob at offset 64: size 18446744073709551615 past end of file (148 bytes)");
  }
  SECTION("unknown dtype") {
    StoreLE32(&f[68], 99);
    CHECK(ReadAt(f, 64, &v).message() == "w.bin: blob at offset 64: dtype: unknown code 99");
  }
  SECTION("data overlapping the metadata") {
    StoreLE64(&f[80], 70);
    CHECK(ReadAt(f, 64, &v).message() ==
          "w.bin: blob at offset 64: data offset 70 overlaps its own metadata");
  }
}

TEST_CASE("blob writer lays out records on 64-byte boundaries and reads back") {
  TempDir dir;
  const std::string path = dir.path() + "/weight.bin";
  std::vector<uint8_t> a(3, 0x11), b(100, 0x22), c(1, 0x33);
  uint64_t oa, ob, oc;
  {
    BlobWriter w;
    REQUIRE(w.Open(path).ok());
    REQUIRE(w.Append(3, a.data(), a.size(), 0, &oa).ok());
    REQUIRE(w.Append(1, b.data(), b.size(), 0, &ob).ok());
    REQUIRE(w.Append(11, c.data(), c.size(), 4, &oc).ok());  // one uint4 element: 4 padding bits
    REQUIRE(w.Finish().ok());
  }
  CHECK(oa == 64);
  CHECK(ob == 192);  // 128 + 3 rounded up to 64
  CHECK(oc == 384);  // 256 + 100 rounded up
  MappedFile file;
  REQUIRE(file.Open(path).ok());
  CHECK(file.size() == 384 + 64 + 1);  // no padding after the last blob
  BlobReader r;
  REQUIRE(r.Open(file.data(), file.size(), path).ok());
  CHECK(r.count() == 3);
  BlobView v;
  REQUIRE(r.Read(ob, &v).ok());
  CHECK(v.blob_dtype == 1);
  CHECK(v.size == 100);
  CHECK(std::memcmp(v.data, b.data(), 100) == 0);
  REQUIRE(r.Read(oc, &v).ok());
  CHECK(v.padding_bits == 4);
  CHECK(v.data[0] == 0x33);
  // The gap between blobs is zero-filled.
  for (uint64_t i = 128 + 3; i < 192; ++i) CHECK(file.data()[i] == 0);
}

TEST_CASE("blob writer reports an unwritable path") {
  BlobWriter w;
  Status st = w.Open("/nonexistent-dir/weight.bin");
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message() == "/nonexistent-dir/weight.bin: cannot create: No such file or directory");
}

TEST_CASE("the blob format's dtype codes are exactly those a MIL type maps to") {
  for (uint32_t code = 0; code < 64; ++code) {
    INFO("blob dtype code " << code);
    CHECK(IsBlobDTypeCode(code) == (FindDTypeByBlobCode(code) != nullptr));
  }
}
