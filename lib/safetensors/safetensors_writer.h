// Writing .safetensors files (layout in safetensors.h). The file is assembled beside its final
// path, as OUTPUT.partial-XXXXXX (util/staging.h), and renamed into place by Finish together with
// the report; a writer destroyed before Finish removes it, so a failed run leaves nothing at OUTPUT.
//
// Headers written here follow the reference implementation: tensors in the order given, their
// data contiguous from offset 0 (no holes), and the header padded with spaces to a multiple of 8
// bytes so that the data starts 8-byte aligned.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "palettize/status.h"
#include "safetensors/safetensors.h"
#include "util/staging.h"

namespace palettize {

struct SafeTensorSpec {
  std::string name;
  SafeDType dtype = SafeDType::kF32;
  std::vector<uint64_t> shape;
};

// The 8-byte length and the header for `tensors`, laid out one after the other, with `metadata`
// as __metadata__ (left out when empty). `offsets` receives each tensor's data offset.
std::string SafeTensorsHeader(const std::vector<SafeTensorSpec>& tensors,
                              const std::map<std::string, std::string>& metadata,
                              std::vector<uint64_t>* offsets);

class SafeTensorsWriter {
 public:
  SafeTensorsWriter() = default;
  ~SafeTensorsWriter();
  SafeTensorsWriter(const SafeTensorsWriter&) = delete;
  SafeTensorsWriter& operator=(const SafeTensorsWriter&) = delete;

  // Creates OUTPUT.partial-XXXXXX. Without `overwrite` the commit never replaces an existing
  // `path`. Which paths may be written at all (not the input) is the caller's check, made once
  // for the run: util/path_rules.h CheckRunPaths.
  Status Begin(const std::string& path, bool overwrite);
  // Appends at the end of what is written so far.
  Status Append(const void* data, uint64_t n);
  // Writes at file position `offset` (the file grows as needed).
  Status WriteAt(uint64_t offset, const void* data, uint64_t n);
  // Closes the file and renames it to the output path, together with `also` (the staged report,
  // emitted config, plot; each may be null or inactive): all or none.
  Status Finish(const std::vector<StagedOutput*>& also = {});

  const std::string& path() const { return path_; }

 private:
  Status Failed(const char* what);

  std::string path_;
  StagedOutput staged_;
  uint64_t end_ = 0;
};

}  // namespace palettize
