// Helpers shared by the C++ tests.
#pragma once

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "MIL.pb.h"
#include "mil/weights.h"
#include "palettize/compress_run.h"
#include "palettize/config.h"
#include "plan/plan.h"
#include "safetensors/safetensors_writer.h"
#include "sensitivity/sensitivity.h"
#include "util/file.h"

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

// Sensitivities held as an F64 tensor `t` over `s` (both must outlive the result).
inline palettize::ElementWeights F64Sensitivities(const std::vector<double>& s, palettize::SafeTensor* t) {
  t->dtype = palettize::SafeDType::kF64;
  t->shape = {s.size()};
  t->elements = s.size();
  t->bytes = s.size() * 8;
  t->data = reinterpret_cast<const uint8_t*>(s.data());
  palettize::ElementWeights w;
  w.tensor = t;
  return w;
}

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

// A plan that palettizes a weight at `nbits` in `mode`, grouped by `group_size` channels along
// `axis` (the tests' usual plan; per_tensor when group_size is 0 or the whole axis).
inline palettize::WeightPlan PalettizePlan(palettize::PalettizeMode mode, int nbits, uint64_t group_size,
                                           int axis = 0) {
  palettize::WeightPlan p;
  p.palettize = true;
  p.config.mode = mode;
  p.config.nbits = nbits;
  p.channel_axis = axis;
  p.group_size = group_size;
  return p;
}

// Sets `vt` to a tensor type of MIL dtype `dtype` and `dims` (a negative dimension: unknown).
inline void SetTensorType(CoreML::Specification::MILSpec::ValueType* vt, int dtype,
                          const std::vector<int64_t>& dims) {
  auto* tt = vt->mutable_tensortype();
  tt->set_datatype(CoreML::Specification::MILSpec::DataType(dtype));
  tt->set_rank(int64_t(dims.size()));
  for (int64_t d : dims) {
    if (d < 0)
      tt->add_dimensions()->mutable_unknown();
    else
      tt->add_dimensions()->mutable_constant()->set_size(uint64_t(d));
  }
}

// A small checkpoint written through the Env in use: two float32 weights (64x48, 48x64) of values
// on a few clusters, and a bias; `seed` varies the values. Throws (failing the test) if it cannot.
inline void WriteTestCheckpoint(const std::string& path, uint32_t seed) {
  using namespace palettize;
  std::vector<SafeTensorSpec> specs = {{"fc1.weight", SafeDType::kF32, {64, 48}},
                                       {"fc1.bias", SafeDType::kF32, {64}},
                                       {"fc2.weight", SafeDType::kF32, {48, 64}}};
  std::vector<uint64_t> offsets;
  std::string bytes = SafeTensorsHeader(specs, {{"format", "pt"}}, &offsets);
  uint32_t state = seed;
  for (const SafeTensorSpec& s : specs) {
    uint64_t n = 1;
    for (uint64_t d : s.shape) n *= d;
    for (uint64_t i = 0; i < n; ++i) {
      state = state * 1664525u + 1013904223u;
      const float f = float(state >> 29) * 0.25f - 1 + float(state & 0xFF) * 1e-4f;
      bytes.append(reinterpret_cast<const char*>(&f), 4);
    }
  }
  if (!WriteStringToFile(path, bytes).ok()) throw std::runtime_error("cannot write " + path);
}

// A compress run of `in` at 2 bits on 2 threads, every weight palettized (the small test models'
// weights would fall under the default size threshold); `force` replaces an existing output.
inline palettize::CompressRun SmallRun(const std::string& in, const std::string& out,
                                       const std::string& report, bool force) {
  palettize::CompressRun r;
  r.inputs = {in};
  r.output = out;
  r.options.report_path = report;
  r.options.overwrite = force;
  r.options.threads = 2;
  r.overrides.nbits = 2;
  r.overrides.weight_threshold = 0;
  return r;
}
