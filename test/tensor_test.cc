// PalettizeTensor (palettize/tensor.h), the Python package's entry point: the same decoded bytes as
// CompressCheckpoint writes for the tensor in a file, with and without sensitivities; the
// reasons it keeps a tensor; and its errors, each naming the tensor.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "palettize/checkpoint.h"
#include "palettize/tensor.h"
#include "safetensors/safetensors.h"
#include "test_util.h"
#include "util/file.h"

using namespace palettize;

namespace {

// `n` float32 values on a few clusters (a deterministic sequence: the same on every platform).
std::vector<float> Clustered(uint64_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t state = seed;
  for (float& f : v) {
    state = state * 1664525u + 1013904223u;
    f = float(state >> 29) * 0.25f - 1 + float(state & 0xFFF) * 1e-5f;
  }
  return v;
}

std::string Bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// The dense output of CompressCheckpoint for a one-tensor checkpoint `name` of `shape`, with
// `config` as global_config, and with `sensitivity` (written beside it) when not empty.
std::string ViaCheckpoint(const std::string& name, const std::vector<uint64_t>& shape,
                          const std::vector<float>& v, const PalettizeConfig& config,
                          const std::vector<float>& sensitivity = {}) {
  TempDir dir;
  std::vector<uint64_t> offsets;
  std::string file = SafeTensorsHeader({{name, SafeDType::kF32, shape}}, {}, &offsets) + Bytes(v);
  REQUIRE(WriteStringToFile(dir.path() + "/in.safetensors", file).ok());
  CheckpointOptions o;
  o.compress.config.global_config = config;
  if (!sensitivity.empty()) {
    std::string s = SafeTensorsHeader({{name, SafeDType::kF32, shape}}, {}, &offsets) + Bytes(sensitivity);
    REQUIRE(WriteStringToFile(dir.path() + "/s.safetensors", s).ok());
    o.compress.sensitivity_file = dir.path() + "/s.safetensors";
    o.compress.sensitivity_normalize = true;
  }
  CheckpointReport r;
  const Status st =
      CompressCheckpoint(dir.path() + "/in.safetensors", dir.path() + "/out.safetensors", o, &r);
  REQUIRE(st.ok());
  SafeTensorsFile out;
  REQUIRE(out.Open(dir.path() + "/out.safetensors").ok());
  const SafeTensor* t = out.Find(name);
  REQUIRE(t != nullptr);
  return std::string(reinterpret_cast<const char*>(t->data), t->bytes);
}

TensorInput Input(const std::string& name, const std::string& type, const std::vector<uint64_t>& shape,
                  const std::vector<float>& v) {
  TensorInput in;
  in.name = name;
  in.module_type = type;
  in.dtype = "F32";
  in.shape = shape;
  in.data = v.data();
  return in;
}

PalettizeConfig NoThreshold(int nbits) {
  PalettizeConfig c = Bits(nbits);
  c.weight_threshold = 0;
  return c;
}

}  // namespace

TEST_CASE("PalettizeTensor decodes as CompressCheckpoint writes the tensor, bit for bit") {
  const std::vector<uint64_t> shape = {32, 8, 3, 3};
  const std::vector<float> v = Clustered(32 * 8 * 9, 7);
  PalettizeConfig grouped = NoThreshold(3);
  grouped.granularity = Granularity::kPerGroupedChannel;
  grouped.group_size = 8;
  PalettizeConfig vector = NoThreshold(4);
  vector.cluster_dim = 2;
  PalettizeConfig scaled = NoThreshold(4);
  scaled.enable_per_channel_scale = true;
  scaled.lut_dtype = LutDType::kInt8;
  for (const PalettizeConfig& c : {NoThreshold(4), grouped, vector, scaled}) {
    INFO(DescribeConfig(c));
    TensorOutput out;
    REQUIRE(PalettizeTensor(Input("conv.weight", "Conv2d", shape, v), c, &out).ok());
    REQUIRE(out.palettized);
    CHECK(out.nbits == c.nbits);
    CHECK(out.decoded == ViaCheckpoint("conv.weight", shape, v, c));
    CHECK(out.decoded != Bytes(v));
  }
}

TEST_CASE("PalettizeTensor with sensitivities is the CLI's --sensitivity --sensitivity-normalize") {
  const std::vector<uint64_t> shape = {64, 48};
  const std::vector<float> v = Clustered(64 * 48, 3);
  std::vector<float> s = Clustered(64 * 48, 9);
  for (float& x : s) x = x * x;  // >= 0, some exactly 0
  TensorInput in = Input("fc.weight", "Linear", shape, v);
  TensorOutput plain, weighted;
  REQUIRE(PalettizeTensor(in, NoThreshold(3), &plain).ok());
  in.sensitivity = s.data();
  in.sensitivity_normalize = true;
  REQUIRE(PalettizeTensor(in, NoThreshold(3), &weighted).ok());
  REQUIRE(weighted.palettized);
  CHECK(weighted.decoded == ViaCheckpoint("fc.weight", shape, v, NoThreshold(3), s));
  CHECK(weighted.decoded != plain.decoded);
}

TEST_CASE("PalettizeTensor keeps a tensor, saying why, as the CLI would") {
  const std::vector<float> v = Clustered(6 * 4, 1);
  TensorOutput out;
  PalettizeConfig grouped = NoThreshold(2);
  grouped.granularity = Granularity::kPerGroupedChannel;
  grouped.group_size = 4;  // 6 channels
  REQUIRE(PalettizeTensor(Input("fc.weight", "Linear", {6, 4}, v), grouped, &out).ok());
  CHECK_FALSE(out.palettized);
  CHECK(out.reason.find("group_size") != std::string::npos);
  REQUIRE(PalettizeTensor(Input("fc.weight", "Linear", {6, 4}, v), NoThreshold(8), &out).ok());
  CHECK_FALSE(out.palettized);
  CHECK(out.reason.find("bytes") != std::string::npos);
  REQUIRE(PalettizeTensor(Input("fc.weight", "Linear", {6, 4}, v), Bits(4), &out).ok());  // threshold 2048
  CHECK_FALSE(out.palettized);
  CHECK(out.decoded.empty());
}

TEST_CASE("PalettizeTensor errors name the tensor") {
  const std::vector<float> v = Clustered(16 * 16, 2);
  TensorOutput out;
  TensorInput in = Input("m.weight", "Linear", {16, 16}, v);
  in.dtype = "I8";
  Status st = PalettizeTensor(in, NoThreshold(4), &out);
  CHECK(st.message() == "m.weight: dtype 'I8' is not one of F16, BF16, F32, F64");
  in = Input("m.weight", "LayerNorm", {16, 16}, v);
  CHECK(PalettizeTensor(in, NoThreshold(4), &out).message() ==
        "m.weight: module type 'LayerNorm' is not one of Linear, Conv1d, Conv2d, Embedding");
  in = Input("m.weight", "Conv2d", {16, 16}, v);
  CHECK(PalettizeTensor(in, NoThreshold(4), &out).message() == "m.weight: a Conv2d weight has rank 4, not 2");
  in = Input("m.weight", "Linear", {16, 16}, v);
  CHECK(PalettizeTensor(in, NoThreshold(5), &out).message().rfind("m.weight", 0) == 0);
  std::vector<float> s(v.size(), 1.0f);
  s[5] = -1;
  in.sensitivity = s.data();
  st = PalettizeTensor(in, NoThreshold(4), &out);
  CHECK(st.message() == "m.weight: sensitivity element 5 is -1; sensitivities must be finite and >= 0");
  s[5] = std::numeric_limits<float>::quiet_NaN();
  CHECK_FALSE(PalettizeTensor(in, NoThreshold(4), &out).ok());
  in.data = nullptr;
  CHECK(PalettizeTensor(in, NoThreshold(4), &out).message() == "m.weight: no data");
}
