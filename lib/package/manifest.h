// Manifest.json of an .mlpackage (../shared/coreml-format.md section 1):
//   {"fileFormatVersion": "1.0.0",
//    "itemInfoEntries": {ID: {"author", "description", "name", "path"}, ...},
//    "rootModelIdentifier": ID}
// `path` is relative to the package's Data/ folder. Every entry and key is kept, in order, so that
// entries written by other tools (Xcode overlays, other authors) survive a rewrite untouched.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "palettize/status.h"

namespace palettize {

struct ManifestItem {
  std::string id;
  std::string author;
  std::string name;
  std::string path;  // relative to Data/
};

class Manifest {
 public:
  // Parses and validates `text`; `file` names the Manifest.json in errors.
  Status Parse(const std::string& text, const std::string& file);

  std::string Serialize() const;

  const std::vector<ManifestItem>& items() const { return items_; }
  const ManifestItem& root() const { return items_[root_index_]; }

 private:
  nlohmann::ordered_json json_;
  std::vector<ManifestItem> items_;
  size_t root_index_ = 0;
};

}  // namespace palettize
