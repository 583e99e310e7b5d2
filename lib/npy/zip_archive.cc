// Layout and checks: zip_archive.h.
#include "npy/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <set>

namespace palettize {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64EndSize = 56, kLocatorSize = 20;
// Deflate cannot expand more than about 1032 to 1: a larger declared size is a lie.
constexpr uint64_t kMaxInflateRatio = 1032;

uint64_t LE(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

void PutLE(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(char((v >> (8 * i)) & 0xFF));
}

uint32_t Crc32(const uint8_t* p, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt chunk = uInt(std::min<uint64_t>(n, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk, n -= chunk;
  }
  return uint32_t(crc);
}

struct Central {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t csize = 0, usize = 0, offset = 0;
};

// The end of central directory: where the central directory is and how many entries it has.
Status FindCentral(const uint8_t* d, size_t size, const std::string& file, uint64_t* count,
                   uint64_t* cd_offset, uint64_t* cd_size, uint64_t* cd_limit) {
  if (size < kEndSize)
    return Status::InvalidInput(file + ": not a zip archive (" + std::to_string(size) + " bytes)");
  // The record is the last 22 bytes plus its comment (at most 65535 bytes).
  size_t end = size;
  for (size_t at = size - kEndSize + 1; at-- > 0 && size - at <= kEndSize + 0xFFFF;) {
    if (LE(d + at, 4) == kEndSig && at + kEndSize + LE(d + at + 20, 2) == size) {
      end = at;
      break;
    }
  }
  if (end == size)
    return Status::InvalidInput(file + ": not a zip archive (no end of central directory record)");
  const uint8_t* e = d + end;
  if (LE(e + 4, 2) != 0 || LE(e + 6, 2) != 0)
    return Status::InvalidInput(file + ": a multi-disk zip archive is not read");
  *count = LE(e + 10, 2);
  *cd_size = LE(e + 12, 4);
  *cd_offset = LE(e + 16, 4);
  *cd_limit = end;
  if (*count == 0xFFFF || *cd_size == 0xFFFFFFFF || *cd_offset == 0xFFFFFFFF) {
    if (end < kLocatorSize || LE(d + end - kLocatorSize, 4) != kZip64LocatorSig)
      return Status::InvalidInput(file + ": end record asks for zip64, but there is no zip64 locator");
    const uint64_t z = LE(d + end - kLocatorSize + 8, 8);
    if (z > end - kLocatorSize || end - kLocatorSize - z < kZip64EndSize || LE(d + z, 4) != kZip64EndSig)
      return Status::InvalidInput(file + ": zip64 end record offset " + std::to_string(z) +
                                  " is not a zip64 end record");
    *count = LE(d + z + 32, 8);
    *cd_size = LE(d + z + 40, 8);
    *cd_offset = LE(d + z + 48, 8);
    *cd_limit = z;
  }
  if (*count > kMaxZipEntries)
    return Status::InvalidInput(file + ": " + std::to_string(*count) + " entries; at most " +
                                std::to_string(kMaxZipEntries) + " are read");
  if (*cd_offset > *cd_limit || *cd_size > *cd_limit - *cd_offset)
    return Status::InvalidInput(file + ": central directory [" + std::to_string(*cd_offset) + ", +" +
                                std::to_string(*cd_size) + ") runs past its end record");
  return Status::OK();
}

// Reads the zip64 extra field (id 1) of a central header: each field that is 0xFF..FF in the
// header is there, in order usize, csize, offset.
Status ReadZip64Extra(const uint8_t* x, size_t n, const std::string& what, Central* c) {
  const bool need_u = c->usize == 0xFFFFFFFF, need_c = c->csize == 0xFFFFFFFF,
             need_o = c->offset == 0xFFFFFFFF;
  for (size_t at = 0; at + 4 <= n;) {
    const uint64_t id = LE(x + at, 2), len = LE(x + at + 2, 2);
    if (len > n - at - 4) return Status::InvalidInput(what + ": extra field runs past its length");
    if (id == 1) {
      const uint8_t* f = x + at + 4;
      const uint64_t want = 8 * uint64_t(need_u + need_c + need_o);
      if (len < want) return Status::InvalidInput(what + ": zip64 extra field too short");
      if (need_u) c->usize = LE(f, 8), f += 8;
      if (need_c) c->csize = LE(f, 8), f += 8;
      if (need_o) c->offset = LE(f, 8);
      return Status::OK();
    }
    at += 4 + len;
  }
  if (need_u || need_c || need_o)
    return Status::InvalidInput(what + ": a size or offset is 0xFFFFFFFF but no zip64 extra field");
  return Status::OK();
}

Status Inflate(const uint8_t* in, uint64_t csize, uint64_t usize, const std::string& what,
               std::vector<uint8_t>* out) {
  if (usize > kMaxInflateRatio * csize + 1024)
    return Status::InvalidInput(what + ": inflates to " + std::to_string(usize) + " bytes from " +
                                std::to_string(csize) + ", more than deflate can");
  out->assign(size_t(usize), 0);
  z_stream s{};
  if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return Status::InvalidInput(what + ": cannot start inflating");
  uint64_t in_left = csize, out_left = usize;
  int rc = Z_OK;
  s.next_in = const_cast<Bytef*>(in);
  uint8_t none = 0;  // zlib refuses a null output pointer, even for no bytes
  s.next_out = usize > 0 ? out->data() : &none;
  while (rc == Z_OK) {
    if (s.avail_in == 0 && in_left > 0) {
      s.avail_in = uInt(std::min<uint64_t>(in_left, 1u << 30));
      in_left -= s.avail_in;
    }
    if (s.avail_out == 0 && out_left > 0) {
      s.avail_out = uInt(std::min<uint64_t>(out_left, 1u << 30));
      out_left -= s.avail_out;
    }
    rc = inflate(&s, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && s.avail_out == 0 && out_left == 0) break;  // more data than declared
    if (rc == Z_BUF_ERROR && s.avail_in == 0 && in_left == 0) break;    // truncated stream
  }
  const uint64_t produced = uint64_t(s.total_out);
  inflateEnd(&s);
  if (rc != Z_STREAM_END) {
    if (rc == Z_DATA_ERROR) return Status::InvalidInput(what + ": invalid deflate data");
    return Status::InvalidInput(what + ": deflate data does not end within its " + std::to_string(csize) +
                                " bytes and " + std::to_string(usize) + " inflated bytes");
  }
  if (produced != usize)
    return Status::InvalidInput(what + ": inflates to " + std::to_string(produced) + " bytes, not " +
                                std::to_string(usize));
  return Status::OK();
}

}  // namespace

Status ReadZipArchive(const uint8_t* d, size_t size, const std::string& file, std::vector<ZipEntry>* entries,
                      std::vector<std::vector<uint8_t>>* inflated) {
  entries->clear();
  inflated->clear();
  uint64_t count, cd_offset, cd_size, cd_limit;
  PALETTIZE_RETURN_IF_ERROR(FindCentral(d, size, file, &count, &cd_offset, &cd_size, &cd_limit));
  std::vector<Central> central;
  uint64_t at = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    const std::string nth = file + ": central directory entry " + std::to_string(i);
    if (cd_end - at < kCentralSize || LE(d + at, 4) != kCentralSig)
      return Status::InvalidInput(nth + ": no central header at offset " + std::to_string(at));
    const uint8_t* h = d + at;
    Central c;
    c.flags = uint16_t(LE(h + 8, 2));
    c.method = uint16_t(LE(h + 10, 2));
    c.crc = uint32_t(LE(h + 16, 4));
    c.csize = LE(h + 20, 4);
    c.usize = LE(h + 24, 4);
    const uint64_t name_len = LE(h + 28, 2), extra_len = LE(h + 30, 2), comment_len = LE(h + 32, 2);
    c.offset = LE(h + 42, 4);
    if (name_len + extra_len + comment_len > cd_end - at - kCentralSize)
      return Status::InvalidInput(nth + ": name, extra and comment run past the central directory");
    if (name_len == 0 || name_len > kMaxZipNameBytes)
      return Status::InvalidInput(nth + ": name length " + std::to_string(name_len) + " is not in [1, " +
                                  std::to_string(kMaxZipNameBytes) + "]");
    c.name.assign(reinterpret_cast<const char*>(h + kCentralSize), size_t(name_len));
    const std::string what = file + ": entry '" + c.name + "'";
    if (c.name.find('\0') != std::string::npos) return Status::InvalidInput(what + ": name holds a NUL byte");
    PALETTIZE_RETURN_IF_ERROR(ReadZip64Extra(h + kCentralSize + name_len, size_t(extra_len), what, &c));
    if (c.flags & 1) return Status::InvalidInput(what + ": is encrypted");
    if (c.method != 0 && c.method != 8)
      return Status::InvalidInput(what + ": compression method " + std::to_string(c.method) +
                                  " is not stored (0) or deflate (8)");
    if (c.method == 0 && c.csize != c.usize)
      return Status::InvalidInput(what + ": stored, but its sizes differ (" + std::to_string(c.csize) +
                                  " and " + std::to_string(c.usize) + ")");
    central.push_back(std::move(c));
    at += kCentralSize + name_len + extra_len + comment_len;
  }

  // Local headers and data: inside [0, cd_offset), in order of offset, none overlapping.
  std::vector<size_t> order(central.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return central[a].offset < central[b].offset; });
  std::vector<uint64_t> data_at(central.size());
  uint64_t prev_end = 0;
  std::string prev;
  std::set<std::string> names;
  for (const size_t i : order) {
    const Central& c = central[i];
    const std::string what = file + ": entry '" + c.name + "'";
    if (!names.insert(c.name).second) return Status::InvalidInput(what + ": appears twice");
    if (c.offset < prev_end)
      return Status::InvalidInput(what + ": local header at " + std::to_string(c.offset) +
                                  " overlaps entry '" + prev + "', which ends at " +
                                  std::to_string(prev_end));
    if (c.offset > cd_offset || cd_offset - c.offset < kLocalSize || LE(d + c.offset, 4) != kLocalSig)
      return Status::InvalidInput(what + ": no local header at offset " + std::to_string(c.offset));
    const uint8_t* h = d + c.offset;
    const uint64_t name_len = LE(h + 26, 2), extra_len = LE(h + 28, 2);
    const uint64_t begin = c.offset + kLocalSize + name_len + extra_len;
    if (begin > cd_offset || c.csize > cd_offset - begin)
      return Status::InvalidInput(what + ": data [" + std::to_string(begin) + ", +" +
                                  std::to_string(c.csize) + ") runs past the central directory at " +
                                  std::to_string(cd_offset));
    if (name_len != c.name.size() ||
        c.name.compare(0, c.name.size(), reinterpret_cast<const char*>(h + kLocalSize), size_t(name_len)) !=
            0)
      return Status::InvalidInput(what + ": local header names another entry");
    if (LE(h + 8, 2) != c.method)
      return Status::InvalidInput(what + ": local header has another compression method");
    data_at[i] = begin;
    prev_end = begin + c.csize;
    prev = c.name;
  }

  inflated->reserve(central.size());
  for (size_t i = 0; i < central.size(); ++i) {
    const Central& c = central[i];
    const std::string what = file + ": entry '" + c.name + "'";
    ZipEntry e;
    e.name = c.name;
    e.size = c.usize;
    e.data = d + data_at[i];
    if (c.method == 8) {
      inflated->emplace_back();
      PALETTIZE_RETURN_IF_ERROR(Inflate(e.data, c.csize, c.usize, what, &inflated->back()));
      e.data = inflated->back().data();
    }
    const uint32_t crc = Crc32(e.data, e.size);
    if (crc != c.crc)
      return Status::InvalidInput(what + ": CRC-32 " + std::to_string(crc) + " of its data does not match " +
                                  std::to_string(c.crc) + " in the central directory");
    entries->push_back(std::move(e));
  }
  return Status::OK();
}

Status ZipStored(const std::vector<ZipOutEntry>& entries, const std::string& file, std::string* out) {
  out->clear();
  std::string central;
  if (entries.size() > 0xFFFF)
    return Status::InvalidArgument(file + ": " + std::to_string(entries.size()) +
                                   " arrays; at most 65535 are written");
  for (const ZipOutEntry& e : entries) {
    const uint64_t offset = out->size();
    if (offset + kLocalSize + e.name.size() + e.bytes.size() > 0xFFFFFFFEull)
      return Status::InvalidArgument(file + ": entry '" + e.name +
                                     "' would pass 4 GiB, which needs zip64 (not written)");
    const uint32_t crc = Crc32(reinterpret_cast<const uint8_t*>(e.bytes.data()), e.bytes.size());
    // Version 2.0, no flags, stored, time 0:00 on 1980-01-01 (the earliest zip date: reproducible).
    auto common = [&](std::string* h) {
      PutLE(h, 20, 2), PutLE(h, 0, 2), PutLE(h, 0, 2), PutLE(h, 0, 2), PutLE(h, 0x21, 2);
      PutLE(h, crc, 4), PutLE(h, e.bytes.size(), 4), PutLE(h, e.bytes.size(), 4), PutLE(h, e.name.size(), 2);
    };
    PutLE(out, kLocalSig, 4);
    common(out);
    PutLE(out, 0, 2);
    *out += e.name;
    *out += e.bytes;
    PutLE(&central, kCentralSig, 4);
    PutLE(&central, 20, 2);  // made by: MS-DOS, 2.0
    common(&central);
    PutLE(&central, 0, 2), PutLE(&central, 0, 2), PutLE(&central, 0, 2), PutLE(&central, 0, 2);
    PutLE(&central, 0, 4), PutLE(&central, offset, 4);
    central += e.name;
  }
  const uint64_t cd_offset = out->size();
  if (cd_offset + central.size() + kEndSize > 0xFFFFFFFEull)
    return Status::InvalidArgument(file + ": would pass 4 GiB, which needs zip64 (not written)");
  *out += central;
  PutLE(out, kEndSig, 4), PutLE(out, 0, 2), PutLE(out, 0, 2);
  PutLE(out, entries.size(), 2), PutLE(out, entries.size(), 2);
  PutLE(out, central.size(), 4), PutLE(out, cd_offset, 4), PutLE(out, 0, 2);
  return Status::OK();
}

}  // namespace palettize
