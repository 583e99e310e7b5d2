// Helpers shared by the C++ tests.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <string>

// A fresh folder under $TMPDIR, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "palettize-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A model from ../shared/models (read-only; tests that write copy it first).
inline std::string SharedModel(const std::string& name) {
  return std::string(PALETTIZE_SHARED_MODELS) + "/" + name + ".mlpackage";
}
