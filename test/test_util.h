// Helpers shared by the C++ tests.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "MIL.pb.h"
#include "mil/weights.h"
#include "palettize/config.h"

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

// A tensor type of `dims` and MIL dtype `mil_type` (float16, float32 or an 8-bit type).
inline palettize::TensorShape MakeShape(std::vector<uint64_t> dims, int mil_type) {
  palettize::TensorShape s;
  s.mil_type = mil_type;
  s.bits = mil_type == CoreML::Specification::MILSpec::DataType::FLOAT16   ? 16
           : mil_type == CoreML::Specification::MILSpec::DataType::FLOAT32 ? 32
                                                                           : 8;
  s.dims = std::move(dims);
  s.elements = 1;
  for (uint64_t d : s.dims) s.elements *= d;
  return s;
}

// The default config (per_tensor) at `nbits` in `mode`.
inline palettize::PalettizeConfig Bits(int nbits,
                                       palettize::PalettizeMode mode = palettize::PalettizeMode::kKMeans) {
  palettize::PalettizeConfig c;
  c.mode = mode;
  c.nbits = nbits;
  return c;
}
