#include "fuzz_package.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "util/file.h"

namespace fs = std::filesystem;

namespace palettize {

namespace {

// The path in normal form ("a/./b" -> "a/b", so one file has one name), or "" when it is not a
// relative path that stays inside the package.
std::string SafePath(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\0') != std::string::npos) return "";
  const fs::path normal = fs::path(p).lexically_normal();
  for (const fs::path& part : normal)
    if (part == "..") return "";
  return normal == "." ? "" : normal.string();
}

uint32_t Load(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint32_t(p[i]) << (8 * i);
  return v;
}

class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    std::string tmpl = (base / "palettize-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) abort();
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

ArchiveFiles ParseArchive(const uint8_t* data, size_t size) {
  ArchiveFiles files;
  size_t pos = 0;
  while (size - pos >= 2) {
    size_t n = Load(data + pos, 2);
    pos += 2;
    std::string path(reinterpret_cast<const char*>(data + pos), std::min(n, size - pos));
    pos += path.size();
    size_t len = size - pos >= 4 ? Load(data + pos, 4) : 0;
    pos = std::min(size, pos + 4);
    std::string bytes(reinterpret_cast<const char*>(data + pos), std::min(len, size - pos));
    pos += bytes.size();
    std::string safe = SafePath(path);
    if (!safe.empty()) files.emplace_back(std::move(safe), std::move(bytes));
  }
  return files;
}

const std::string& FuzzScratchDir() {
  static const ScratchDir dir;
  return dir.path();
}

void WriteArchive(const ArchiveFiles& files, const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  for (const auto& [rel, bytes] : files) {
    const fs::path path = fs::path(dir) / rel;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
  }
}

void AddDefaultManifest(ArchiveFiles* files) {
  static const char kManifest[] = R"({"fileFormatVersion": "1.0.0",
 "itemInfoEntries": {
  "W": {"author": "com.apple.CoreML", "name": "weights", "path": "com.apple.CoreML/weights"},
  "M": {"author": "com.apple.CoreML", "name": "model.mlmodel", "path": "com.apple.CoreML/model.mlmodel"}},
 "rootModelIdentifier": "M"})";
  if (std::none_of(files->begin(), files->end(), [](const auto& f) { return f.first == "Manifest.json"; }))
    files->emplace_back("Manifest.json", kManifest);
}

bool ArchiveUnchanged(const ArchiveFiles& files, const std::string& dir) {
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    if (std::any_of(files.rbegin(), it, [&](const auto& later) { return later.first == it->first; }))
      continue;
    std::string now;
    const std::string path = JoinPath(dir, it->first);
    if (IsDirectory(path) || !ReadFileToString(path, &now).ok()) continue;
    if (now != it->second) return false;
  }
  return true;
}

bool ScratchHas(const std::string& prefix) {
  for (const auto& entry : fs::directory_iterator(FuzzScratchDir()))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) return true;
  return false;
}

}  // namespace palettize
