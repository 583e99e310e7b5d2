// The zip archive under an .npz: what numpy's savez (stored entries) and savez_compressed
// (deflate) write, read through the central directory. Layout (PKWARE APPNOTE 6.3):
//
//   per entry   local header  "PK\3\4" ... name, extra (savez: a zip64 extra, sizes 0xFFFFFFFF)
//               data          csize bytes, stored or raw deflate
//   central     per entry     "PK\1\2" ... crc, csize, usize, name, extra (zip64 when a field is
//                             0xFFFFFFFF), comment, the local header's offset
//   [zip64 end record "PK\6\6" and its locator "PK\6\7", when the archive needs them]
//   end record  "PK\5\6" entry count, central directory size and offset, comment
//
// Checked: the end record (its comment reaches exactly the end of the file), the central
// directory lies inside the file before it, every entry's fields (no encryption, method stored or
// deflate, name length and entry count under the limits below), its local header (signature,
// same name and method) and data inside the file before the central directory, no two entries
// overlapping, no two alike names, the CRC-32 of every entry's bytes, a deflated entry inflating
// to exactly its size. Errors name the file and the entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "palettize/status.h"

namespace palettize {

constexpr uint64_t kMaxZipEntries = 65536;
constexpr size_t kMaxZipNameBytes = 4096;

struct ZipEntry {
  std::string name;
  const uint8_t* data = nullptr;  // usize bytes: into the file, or into inflated storage
  uint64_t size = 0;
};

// Reads every entry of the archive in `data` (its `size` bytes) in central directory order.
// Deflated entries are inflated into `inflated` (one buffer per entry; their data points there).
// `file` names the archive in errors: "in.npz: entry 'x.npy': CRC-32 ... does not match".
Status ReadZipArchive(const uint8_t* data, size_t size, const std::string& file,
                      std::vector<ZipEntry>* entries, std::vector<std::vector<uint8_t>>* inflated);

// One stored entry for WriteZip: its name and bytes.
struct ZipOutEntry {
  std::string name;
  std::string bytes;
};

// The archive holding `entries` stored (no compression), as zip 2.0 without zip64; InvalidArgument
// naming `file` when it would pass 4 GiB or 65535 entries, which only zip64 could hold.
Status ZipStored(const std::vector<ZipOutEntry>& entries, const std::string& file, std::string* out);

}  // namespace palettize
