#include "package/manifest.h"

#include <cstdio>

namespace palettize {

namespace {

// Returns false when `v` is not a version "a.b.c" no newer than 1.0.0, the newest Core ML reads.
bool SupportedVersion(const std::string& v) {
  int a, b, c;
  char tail;
  if (std::sscanf(v.c_str(), "%d.%d.%d%c", &a, &b, &c, &tail) != 3) return false;
  if (a < 0 || b < 0 || c < 0) return false;
  return a < 1 || (a == 1 && b == 0 && c == 0);
}

// A relative path that stays inside Data/.
bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.compare(start, end - start, "..") == 0 && end - start == 2) return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

Status Manifest::Parse(const std::string& text, const std::string& file) {
  try {
    json_ = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for 1e999
    std::string what = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep its line and column.
    size_t tag = what.find("] ");
    if (tag != std::string::npos) what = what.substr(tag + 2);
    return Status::InvalidInput(file + ": invalid JSON: " + what);
  }
  if (!json_.is_object()) return Status::InvalidInput(file + ": expected a JSON object");

  auto version = json_.find("fileFormatVersion");
  if (version == json_.end() || !version->is_string())
    return Status::InvalidInput(file + ": fileFormatVersion: missing or not a string");
  if (!SupportedVersion(version->get<std::string>()))
    return Status::InvalidInput(file + ": fileFormatVersion: '" + version->get<std::string>() +
                                "' is not supported (newest is 1.0.0)");

  auto entries = json_.find("itemInfoEntries");
  if (entries == json_.end() || !entries->is_object())
    return Status::InvalidInput(file + ": itemInfoEntries: missing or not an object");

  auto root = json_.find("rootModelIdentifier");
  if (root == json_.end() || !root->is_string())
    return Status::InvalidInput(file + ": rootModelIdentifier: missing or not a string");
  const std::string root_id = root->get<std::string>();

  items_.clear();
  bool found_root = false;
  for (auto it = entries->begin(); it != entries->end(); ++it) {
    const std::string field = "itemInfoEntries." + it.key();
    if (!it.value().is_object()) return Status::InvalidInput(file + ": " + field + ": not an object");
    ManifestItem item;
    item.id = it.key();
    for (auto [key, dst] : {std::pair<const char*, std::string*>{"author", &item.author},
                            {"name", &item.name},
                            {"path", &item.path}}) {
      auto v = it.value().find(key);
      if (v == it.value().end()) continue;
      if (!v->is_string()) return Status::InvalidInput(file + ": " + field + "." + key + ": not a string");
      *dst = v->get<std::string>();
    }
    if (!SafeRelativePath(item.path))
      return Status::InvalidInput(file + ": " + field + ".path: '" + item.path +
                                  "' is not a relative path inside Data/");
    if (item.id == root_id) {
      root_index_ = items_.size();
      found_root = true;
    }
    items_.push_back(std::move(item));
  }
  if (!found_root)
    return Status::InvalidInput(file + ": rootModelIdentifier: '" + root_id + "' is not in itemInfoEntries");
  return Status::OK();
}

std::string Manifest::Serialize() const { return json_.dump(4) + "\n"; }

}  // namespace palettize
