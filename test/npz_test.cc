// .npz reader and writer (lib/npy): round trips of every dtype, stored and deflated entries, and
// hostile files (truncated, bad magic, huge header, overlapping entries, shape products that
// overflow, lying sizes), each refused with one line naming the file and the entry.
#include <zlib.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "npy/npy_header.h"
#include "npy/npz.h"
#include "npy/zip_archive.h"
#include "test_util.h"
#include "util/file.h"

using namespace palettize;

namespace {

std::string Bytes(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

// An .npz of f4 [2, 3] "x" (0..5) and i8 [] "n" (-7).
std::string TwoArrays() {
  const float x[6] = {0, 1, 2, 3, 4, 5};
  const int64_t n = -7;
  std::string out;
  REQUIRE(NpzBytes({{"x", NpyDType::kF4, {2, 3}, Bytes(x, sizeof x)}, {"n", NpyDType::kI8, {}, Bytes(&n, 8)}},
                   "t.npz", &out)
              .ok());
  return out;
}

Status Parse(const std::string& bytes, std::vector<NpyArray>* arrays = nullptr) {
  std::vector<NpyArray> a;
  std::vector<std::vector<uint8_t>> inflated;
  Status s = ParseNpz(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t.npz", &a, &inflated);
  if (arrays != nullptr) *arrays = a;
  return s;
}

// A one-entry archive "x.npy" holding `npy` (CRC right, so the .npy layer is what is tested).
std::string OneEntry(const std::string& npy) {
  std::string out;
  REQUIRE(ZipStored({{"x.npy", npy}}, "t.npz", &out).ok());
  return out;
}

std::string Npy(const std::string& dict, size_t data_bytes, uint8_t major = 1) {
  std::string out("\x93NUMPY", 6);
  out += char(major);
  out += '\0';
  const size_t n = dict.size();
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out += char((n >> (8 * i)) & 0xFF);
  return out + dict + std::string(data_bytes, '\0');
}

void PutLE32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + size_t(i)] = char((v >> (8 * i)) & 0xFF);
}

// The archive with entry "x.npy" deflated (raw deflate, as zip stores it), sizes from `npy`.
std::string Deflated(const std::string& npy, uint32_t declared_size) {
  std::string stored = OneEntry(npy);
  z_stream s{};
  REQUIRE(deflateInit2(&s, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string packed(deflateBound(&s, uLong(npy.size())), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(npy.data()));
  s.avail_in = uInt(npy.size());
  s.next_out = reinterpret_cast<Bytef*>(packed.data());
  s.avail_out = uInt(packed.size());
  REQUIRE(deflate(&s, Z_FINISH) == Z_STREAM_END);
  packed.resize(s.total_out);
  deflateEnd(&s);
  // Local header (30 + 5 name bytes), then the deflated data, then the central directory.
  std::string out = stored.substr(0, 35) + packed;
  const size_t cd = out.size();
  out += stored.substr(35 + npy.size());
  out[8] = 8;  // local: method deflate
  PutLE32(&out, 18, uint32_t(packed.size()));
  out[cd + 10] = 8;  // central: method deflate
  PutLE32(&out, cd + 20, uint32_t(packed.size()));
  PutLE32(&out, cd + 24, declared_size);
  PutLE32(&out, out.size() - 6, uint32_t(cd));  // end record: central directory offset
  return out;
}

}  // namespace

TEST_CASE("npz: arrays written are read back with their names, dtypes, shapes and values") {
  std::vector<NpyArray> a;
  const std::string bytes = TwoArrays();
  REQUIRE(Parse(bytes, &a).ok());
  REQUIRE(a.size() == 2);
  CHECK(a[0].name == "x");
  CHECK(a[0].dtype == NpyDType::kF4);
  CHECK(a[0].shape == std::vector<uint64_t>{2, 3});
  CHECK(a[0].At(5) == 5.0);
  CHECK(a[1].name == "n");
  CHECK(a[1].shape.empty());
  CHECK(a[1].elements == 1);
  CHECK(a[1].At(0) == -7.0);
  // numpy's alignment: each array's data starts 64-byte aligned within its .npy.
  CHECK((a[0].data - reinterpret_cast<const uint8_t*>(bytes.data()) - 35) % 64 == 0);
}

TEST_CASE("npz: every dtype's header names it as numpy does") {
  for (int t = 0; t <= int(NpyDType::kF8); ++t) {
    const NpyDType dtype = NpyDType(t);
    const std::string npy = NpyHeaderBytes(dtype, {3}) + std::string(3 * NpyDTypeSize(dtype), '\x01');
    NpyHeader h;
    REQUIRE(ParseNpyHeader(reinterpret_cast<const uint8_t*>(npy.data()), npy.size(), "a", &h).ok());
    CHECK(h.dtype == dtype);
    CHECK(h.data_offset % 64 == 0);
    CHECK(npy.find(std::string("'descr': '") + NpyDescr(dtype) + "'") != std::string::npos);
  }
}

TEST_CASE("npz: every truncation of a valid file is refused with a message naming the file") {
  const std::string bytes = TwoArrays();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const Status s = Parse(bytes.substr(0, n));
    REQUIRE_FALSE(s.ok());
    CHECK(s.message().rfind("t.npz: ", 0) == 0);
  }
  CHECK(Parse("").message() == "t.npz: not a zip archive (0 bytes)");
}

TEST_CASE("npz: an entry that is not an .npy array is refused naming the entry") {
  CHECK(Parse(OneEntry("\x93NUMPX\x01\x00")).message() ==
        "t.npz: entry 'x.npy': not a .npy array (no \\x93NUMPY magic)");
  CHECK(Parse(OneEntry(Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4, 4))).message() ==
        "t.npz: entry 'x.npy': .npy header: version 4.0 is not 1.0, 2.0 or 3.0");
  std::string out;
  REQUIRE(ZipStored({{"x.txt", "hello"}}, "t.npz", &out).ok());
  CHECK(Parse(out).message() == "t.npz: entry 'x.txt': not NAME.npy (an .npz holds only .npy arrays)");
}

TEST_CASE("npz: a huge header length is refused before it is read") {
  std::string npy = Npy("{}", 0, 2);
  PutLE32(&npy, 8, 0xFFFFFFFF);
  CHECK(Parse(OneEntry(npy)).message() ==
        "t.npz: entry 'x.npy': .npy header: length 4294967295 is over the limit of 65536 bytes");
  npy = Npy("{}", 0, 2);
  PutLE32(&npy, 8, 60000);
  CHECK(Parse(OneEntry(npy)).message() ==
        "t.npz: entry 'x.npy': .npy header: length 60000 runs past the end of the array (14 bytes)");
}

TEST_CASE("npz: a shape whose element count overflows, or does not match the data, is refused") {
  const std::string huge =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904, 4), }";
  CHECK(Parse(OneEntry(Npy(huge, 16))).message() ==
        "t.npz: entry 'x.npy': shape (4611686018427387904, 4611686018427387904, 4) of float32 does not match "
        "the 16 data bytes");
  CHECK(Parse(OneEntry(Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20))).message() ==
        "t.npz: entry 'x.npy': shape (2, 3) of float32 does not match the 20 data bytes");
  CHECK(
      Parse(OneEntry(Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 4)))
          .message() == "t.npz: entry 'x.npy': .npy header: shape is not a tuple of non-negative integers");
  std::string deep = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 65; ++i) deep += "1, ";
  CHECK(Parse(OneEntry(Npy(deep + "), }", 4))).message() ==
        "t.npz: entry 'x.npy': .npy header: shape has more than 64 dimensions");
}

TEST_CASE("npz: Fortran order, big-endian, structured and unknown dtypes are each one clear line") {
  auto message = [](const std::string& dict) { return Parse(OneEntry(Npy(dict, 8))).message(); };
  CHECK(message("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }") ==
        "t.npz: entry 'x.npy': .npy header: fortran_order is True; only C-order arrays are read");
  CHECK(message("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }") ==
        "t.npz: entry 'x.npy': .npy header: descr '>f4' is big-endian; only little-endian arrays are read");
  CHECK(message("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }") ==
        "t.npz: entry 'x.npy': .npy header: descr is a structured dtype; only plain numeric and bool arrays "
        "are read");
  CHECK(message("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }") ==
        "t.npz: entry 'x.npy': .npy header: descr '<c8' is not one of b1, i1, i2, i4, i8, u1, u2, u4, u8, "
        "f2, f4, "
        "f8 (little-endian)");
  CHECK(message("{'descr': '<f4', 'shape': (2,), }") ==
        "t.npz: entry 'x.npy': .npy header: no fortran_order");
  CHECK(
      message("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }") ==
      "t.npz: entry 'x.npy': .npy header: key 'descr' is repeated or not one of descr, fortran_order, shape");
  // Spacing, quotes and a trailing comma as other writers use them are fine.
  CHECK(Parse(OneEntry(Npy("{\"shape\":(2,),\"fortran_order\":False,\"descr\":\"<i4\"}\n", 8))).ok());
}

TEST_CASE("npz: overlapping and repeated entries, a wrong CRC and a lost end record are refused") {
  std::string bytes = TwoArrays();
  // The second central header's local offset pointed at the first entry.
  const size_t cd = size_t(uint8_t(bytes[bytes.size() - 6])) | size_t(uint8_t(bytes[bytes.size() - 5])) << 8;
  const size_t second = cd + 46 + 5;
  REQUIRE(bytes.compare(second, 4, "PK\x01\x02") == 0);
  std::string overlap = bytes;
  PutLE32(&overlap, second + 42, 0);
  CHECK(Parse(overlap).message() ==
        "t.npz: entry 'n.npy': local header at 0 overlaps entry 'x.npy', which ends at 187");
  std::string out;
  REQUIRE(ZipStored({{"x.npy", "a"}, {"x.npy", "b"}}, "t.npz", &out).ok());
  CHECK(Parse(out).message() == "t.npz: entry 'x.npy': appears twice");
  std::string crc = bytes;
  crc[100] ^= 1;
  CHECK(Parse(crc).message().find("t.npz: entry 'x.npy': CRC-32 ") == 0);
  std::string end = bytes;
  end[end.size() - 22] = 'Q';
  CHECK(Parse(end).message() == "t.npz: not a zip archive (no end of central directory record)");
  std::string past = bytes;
  PutLE32(&past, past.size() - 6, uint32_t(past.size()));
  CHECK(Parse(past).message().find("t.npz: central directory [") == 0);
}

TEST_CASE("npz: deflated entries (savez_compressed) are inflated and checked") {
  const std::string npy = NpyHeaderBytes(NpyDType::kI2, {100}) + std::string(200, '\x02');
  // The arrays point into the inflated bytes: those must outlive them.
  const std::string file = Deflated(npy, uint32_t(npy.size()));
  std::vector<NpyArray> a;
  std::vector<std::vector<uint8_t>> inflated;
  REQUIRE(ParseNpz(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "t.npz", &a, &inflated).ok());
  REQUIRE(a.size() == 1);
  CHECK(a[0].data >= inflated[0].data());
  CHECK(a[0].At(99) == 514.0);
  CHECK(Parse(Deflated(npy, 0xFFFFFFFFu)).message() ==
        "t.npz: entry 'x.npy': a size or offset is 0xFFFFFFFF but no zip64 extra field");
  CHECK(Parse(Deflated(npy, 100000000)).message().find("more than deflate can") != std::string::npos);
  CHECK(Parse(Deflated(npy, uint32_t(npy.size() + 1))).message() ==
        "t.npz: entry 'x.npy': inflates to 328 bytes, not 329");
}

TEST_CASE("npz: WriteNpz commits a file numpy's layout reads, and keeps an existing one without overwrite") {
  TempDir dir;
  const std::string path = dir.path() + "/out.npz";
  const double v[2] = {1.5, -2.5};
  REQUIRE(WriteNpz(path, {{"y", NpyDType::kF8, {2}, Bytes(v, sizeof v)}}, false).ok());
  NpzFile f;
  REQUIRE(f.Open(path).ok());
  REQUIRE(f.Find("y") != nullptr);
  CHECK(f.Find("y")->At(1) == -2.5);
  CHECK(f.Find("z") == nullptr);
  const Status again = WriteNpz(path, {}, false);
  CHECK_FALSE(again.ok());
  CHECK(again.message().find("already exists") != std::string::npos);
  NpzFile kept;
  REQUIRE(kept.Open(path).ok());
  CHECK(kept.arrays().size() == 1);
  REQUIRE(WriteNpz(path, {}, true).ok());
  NpzFile g;
  REQUIRE(g.Open(path).ok());
  CHECK(g.arrays().empty());
  size_t files = 0;  // nothing staged is left beside it
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    files += e.path().filename() == "out.npz" ? 1 : 100;
  CHECK(files == 1);
}
