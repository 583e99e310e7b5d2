// Torch checkpoints: bfloat16 rounding, the Torch config schema, the module rule, the safetensors
// writer, and compress on small checkpoints (dense and packed, any thread count).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <set>

#include "checkpoint/checkpoint_plan.h"
#include "palettize/checkpoint.h"
#include "palettize/config.h"
#include "safetensors/safetensors.h"
#include "safetensors/safetensors_writer.h"
#include "test_util.h"
#include "util/file.h"
#include "util/half.h"
#include "util/path_rules.h"

using namespace palettize;

namespace {

struct Tensor {
  SafeTensorSpec spec;
  std::string data;
};

// Writes `tensors` (in order, contiguous) with `metadata` to `path`.
void WriteCheckpoint(const std::string& path, const std::vector<Tensor>& tensors,
                     const std::map<std::string, std::string>& metadata = {}) {
  std::vector<SafeTensorSpec> specs;
  for (const Tensor& t : tensors) specs.push_back(t.spec);
  std::vector<uint64_t> offsets;
  std::string bytes = SafeTensorsHeader(specs, metadata, &offsets);
  for (const Tensor& t : tensors) bytes += t.data;
  REQUIRE(WriteStringToFile(path, bytes).ok());
}

// `n` pseudo-random values of a few clusters, as bytes of `dtype`.
std::string RandomFloats(SafeDType dtype, uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0, 0.05);
  std::vector<double> v(n);
  for (double& x : v) x = double(rng() % 7) * 0.3 - 1 + noise(rng);
  std::string out;
  for (double x : v) {
    if (dtype == SafeDType::kBF16) {
      const uint16_t b = DoubleToBFloat16Bits(x);
      out.append(reinterpret_cast<const char*>(&b), 2);
    } else if (dtype == SafeDType::kF16) {
      const uint16_t b = DoubleToHalfBits(x);
      out.append(reinterpret_cast<const char*>(&b), 2);
    } else {
      const float f = float(x);
      out.append(reinterpret_cast<const char*>(&f), 4);
    }
  }
  return out;
}

std::set<double> Distinct(const SafeTensor& t) {
  std::set<double> s;
  for (uint64_t i = 0; i < t.elements; ++i) s.insert(t.At(i));
  return s;
}

OptimizationConfig TorchConfig(const std::string& yaml) {
  OptimizationConfig c;
  const Status st = ParseTorchPalettizerConfig(yaml, "t.yaml", &c);
  INFO(st.message());
  REQUIRE(st.ok());
  return c;
}

std::string TorchConfigError(const std::string& yaml) {
  OptimizationConfig c;
  const Status st = ParseTorchPalettizerConfig(yaml, "t.yaml", &c);
  REQUIRE(!st.ok());
  return st.message();
}

}  // namespace

TEST_CASE("bfloat16 rounding is to nearest, ties to even, from double") {
  CHECK(DoubleToBFloat16Bits(1.0) == 0x3F80);
  CHECK(DoubleToBFloat16Bits(1.0 + 0x1p-8) == 0x3F80);            // halfway: to the even 1.0
  CHECK(DoubleToBFloat16Bits(1.0 + 0x1p-8 + 0x1p-40) == 0x3F81);  // just above halfway: up
  CHECK(DoubleToBFloat16Bits(1.0 + 3 * 0x1p-8) == 0x3F82);        // halfway between 0x3F81 and 0x3F82: even
  CHECK(DoubleToBFloat16Bits(-2.0) == 0xC000);
  CHECK(DoubleToBFloat16Bits(0x1.FEp127) == 0x7F7F);  // the largest
  CHECK(DoubleToBFloat16Bits(0x1.FFp127) == 0x7F80);  // halfway above it: inf
  CHECK(DoubleToBFloat16Bits(0x1p-133) == 0x0001);    // the smallest subnormal
  CHECK(DoubleToBFloat16Bits(0x1p-134) == 0x0000);    // halfway to it: to the even 0
  CHECK(DoubleToBFloat16Bits(3 * 0x1p-134) == 0x0002);
  CHECK(DoubleToBFloat16Bits(-0.0) == 0x8000);
  CHECK((DoubleToBFloat16Bits(std::nan("")) & 0x7FFF) > 0x7F80);
  // Against float -> bfloat16 by the usual bit trick (exact for inputs that are floats).
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = uint32_t(rng());
    if (((bits >> 23) & 0xFF) == 0xFF) continue;  // inf, NaN
    float f;
    std::memcpy(&f, &bits, 4);
    const uint32_t rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16;
    INFO(bits);
    REQUIRE(DoubleToBFloat16Bits(double(f)) == uint16_t(rounded));
    REQUIRE(RoundToBFloat16(RoundToBFloat16(double(f))) == RoundToBFloat16(double(f)));
  }
}

TEST_CASE("Torch config: keys, defaults and errors") {
  OptimizationConfig c = TorchConfig(
      "global_config: {n_bits: 2}\n"
      "module_type_configs:\n  torch.nn.Linear: {nbits: 6, granularity: per_grouped_channel, group_size: 8}\n"
      "  Embedding: null\n"
      "module_name_configs:\n  encoder.layer.0: {cluster_dim: null, lut_dtype: int8}\n");
  REQUIRE(c.global_config);
  CHECK(c.global_config->nbits == 2);
  REQUIRE(c.op_type_configs.count("Linear"));
  CHECK(c.op_type_configs.at("Linear")->group_size == 8);
  CHECK_FALSE(c.op_type_configs.at("Embedding").has_value());
  CHECK(c.op_name_configs.at("encoder.layer.0")->nbits == 4);  // coremltools.optimize.torch's default
  CHECK(c.op_name_configs.at("encoder.layer.0")->cluster_dim == 1);
  CHECK(c.op_name_configs.at("encoder.layer.0")->lut_dtype == LutDType::kInt8);
  // Nothing configured: every module gets the default, as PostTrainingPalettizerConfig does.
  for (const char* empty : {"", "global_config: null\n", "{}"}) {
    OptimizationConfig d = TorchConfig(empty);
    REQUIRE(d.global_config);
    CHECK(d.global_config->nbits == 4);
  }
  CHECK_FALSE(TorchConfig("module_type_configs: {Linear: {n_bits: 2}}\n").global_config.has_value());
  CHECK(TorchConfig("global_config: {mode: unique}\n").global_config->nbits == 0);

  CHECK(TorchConfigError("op_type_configs: {}\n") ==
        "t.yaml:1: op_type_configs: unknown key (allowed: global_config, module_type_configs, "
        "module_name_configs)");
  CHECK(TorchConfigError("global_config: {n_bits: 4}\ncalibration_nsamples: 16\n") ==
        "t.yaml:2: calibration_nsamples: not supported (palettize does not run the model; pass sensitivities "
        "computed beforehand with sensitivity)");
  CHECK(TorchConfigError("global_config:\n  n_bits: 5\n") ==
        "t.yaml:2: global_config.n_bits: 5 is not one of 1, 2, 3, 4, 6, 8");
  CHECK(TorchConfigError("global_config: {n_bits: 4, nbits: 4}\n") ==
        "t.yaml:1: global_config.nbits: n_bits and nbits name the same field; give one");
  CHECK(
      TorchConfigError("global_config: {num_kmeans_workers: 2}\n") ==
      "t.yaml:1: global_config.num_kmeans_workers: unknown key (allowed: n_bits (or nbits), granularity, "
      "group_size, channel_axis, cluster_dim, enable_per_channel_scale, lut_dtype, weight_threshold, mode)");
  CHECK(TorchConfigError("global_config: {group_size: 4}\n") ==
        "t.yaml:1: global_config.group_size: must not be set with per_tensor granularity");
  CHECK(TorchConfigError("global_config:\n  granularity: per_grouped_channel\n") ==
        "t.yaml:1: global_config: group_size is required with per_grouped_channel granularity");
  CHECK(TorchConfigError("global_config: {channel_axis: 2}\n") ==
        "t.yaml:1: global_config.channel_axis: 2 is not one of 0, 1, null");
  CHECK(TorchConfigError("global_config: {cluster_dim: 2, enable_per_channel_scale: true}\n") ==
        "t.yaml:1: global_config.cluster_dim: 2 is not allowed with enable_per_channel_scale");
  CHECK(
      TorchConfigError("module_type_configs:\n  LayerNorm: null\n") ==
      "t.yaml:2: module_type_configs.LayerNorm: not a module type palettize infers (Linear, Conv1d, Conv2d, "
      "Embedding)");
  CHECK(TorchConfigError("module_type_configs: {Linear: null, nn.Linear: null}\n") ==
        "t.yaml:1: module_type_configs.nn.Linear: names Linear a second time");
  CHECK(
      TorchConfigError("global_config: [4]\n") ==
      "t.yaml:1: global_config: a sequence is not a mapping (a ModulePostTrainingPalettizerConfig) or null");
  // The package schema is untouched: Torch keys are unknown there.
  OptimizationConfig p;
  CHECK(ParseOptimizationConfig("module_type_configs: {}\n", "p.yaml", &p).message() ==
        "p.yaml:1: module_type_configs: unknown key (allowed: config_type, global_config, op_type_configs, "
        "op_name_configs)");
}

TEST_CASE("The module rule, and the longest module name wins") {
  auto tensor = [](std::string name, SafeDType dtype, std::vector<uint64_t> shape) {
    SafeTensor t;
    t.name = std::move(name);
    t.dtype = dtype;
    t.shape = std::move(shape);
    for (uint64_t d : t.shape) t.elements *= d;
    t.bytes = t.elements * SafeDTypeSize(dtype);
    return t;
  };
  const std::vector<SafeTensor> tensors = {
      tensor("embeddings.word_embeddings.weight", SafeDType::kBF16, {100, 64}),
      tensor("encoder.layer.0.attention.self.query.weight", SafeDType::kF32, {64, 64}),
      tensor("encoder.layer.0.attention.self.query.bias", SafeDType::kF32, {64}),
      tensor("encoder.layer.0.output.LayerNorm.weight", SafeDType::kF32, {64}),
      tensor("encoder.layer.1.intermediate.dense.weight", SafeDType::kF16, {128, 64}),
      tensor("conv.weight", SafeDType::kF16, {16, 8, 3}),
      tensor("conv2.weight", SafeDType::kF16, {16, 8, 3, 3}),
      tensor("conv3.weight", SafeDType::kF16, {4, 4, 4, 4, 4}),
      tensor("position_ids.weight", SafeDType::kI64, {1, 512}),
  };
  const OptimizationConfig c = TorchConfig(
      "global_config: {n_bits: 4}\n"
      "module_type_configs: {Conv1d: null, Linear: {n_bits: 6, weight_threshold: 0}}\n"
      "module_name_configs:\n"
      "  encoder.layer.0: {n_bits: 2}\n"
      "  encoder.layer.0.attention.self.query: {n_bits: 3}\n"
      "  encoder.layer: {n_bits: 8}\n");
  std::vector<TensorPlan> plans;
  REQUIRE(PlanCheckpoint(tensors, c, "m.safetensors", &plans).ok());
  REQUIRE(plans.size() == tensors.size());
  CHECK(plans[0].module_type == "Embedding");
  CHECK(plans[0].plan.config_source == "global_config");
  CHECK(plans[0].plan.channel_axis == 0);
  CHECK(plans[1].module == "encoder.layer.0.attention.self.query");
  CHECK(plans[1].module_type == "Linear");
  CHECK(plans[1].plan.config_source == "module_name_configs.encoder.layer.0.attention.self.query");
  CHECK(plans[1].plan.config.nbits == 3);
  CHECK(plans[2].plan.reason == "not a module weight (only tensors named '<module>.weight' are palettized)");
  CHECK(plans[3].plan.reason == "rank 1: 1-D tensors (norms, biases) are left uncompressed");
  CHECK(plans[4].plan.config_source == "module_name_configs.encoder.layer");
  CHECK(plans[4].plan.config.nbits == 8);
  CHECK(plans[5].module_type == "Conv1d");
  CHECK(plans[5].plan.reason == "skipped by config (module_type_configs.Conv1d is null)");
  CHECK(plans[6].module_type == "Conv2d");
  CHECK(plans[6].plan.reason == "1152 elements <= weight_threshold 2048");
  CHECK(plans[7].plan.reason ==
        "rank 5: no module type palettize infers (Linear, Conv1d, Conv2d, Embedding) has it");
  CHECK(plans[8].plan.reason == "dtype I64 is not palettized (only F16, BF16, F32, F64)");

  const OptimizationConfig typo = TorchConfig("module_name_configs: {'encoder\\.layer\\.\\d+': null}\n");
  CHECK(
      PlanCheckpoint(tensors, typo, "m.safetensors", &plans).message() ==
      "m.safetensors: module_name_configs.encoder\\.layer\\.\\d+: no tensor is under this module (names are "
      "literal, not regular expressions)");
}

TEST_CASE("SafeTensorsWriter: what it writes reads back, and nothing is left on failure") {
  TempDir dir;
  const std::string path = dir.path() + "/w.safetensors";
  const std::vector<Tensor> tensors = {{{"a", SafeDType::kF32, {2, 3}}, std::string(24, '\x01')},
                                       {{"b.c", SafeDType::kU8, {5}}, "hello"},
                                       {{"empty", SafeDType::kF16, {0, 4}}, ""}};
  WriteCheckpoint(path, tensors, {{"format", "pt"}});
  SafeTensorsFile f;
  REQUIRE(f.Open(path).ok());
  CHECK(f.header_end() % 8 == 0);
  REQUIRE(f.tensors().size() == 3);
  CHECK(f.Find("b.c")->bytes == 5);
  CHECK(std::string(reinterpret_cast<const char*>(f.Find("b.c")->data), 5) == "hello");
  CHECK(f.metadata().at("format") == "pt");

  {
    SafeTensorsWriter w;
    REQUIRE(w.Begin(dir.path() + "/out.safetensors", false).ok());
    REQUIRE(w.Append("x", 1).ok());
  }  // destroyed before Finish
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    CHECK(e.path().filename() == "w.safetensors");
  // The output being the input is refused by the run's path rules, before any writer exists.
  CheckpointOptions o;
  o.compress.overwrite = true;
  CHECK(CheckRunPaths(CompressRunPaths(path, {path, OutputKind::kFile}, o.compress)).message() ==
        path + ": the output is the input; write to another path");
}

TEST_CASE(
    "CompressCheckpoint: the dense output holds the tables' values, as packed does, for any thread count") {
  TempDir dir;
  const std::string in = dir.path() + "/m.safetensors";
  const std::string bias(64 * 4, '\x07');
  const std::vector<Tensor> tensors = {
      {{"fc1.weight", SafeDType::kBF16, {64, 96}}, RandomFloats(SafeDType::kBF16, 64 * 96, 1)},
      {{"fc1.bias", SafeDType::kF32, {64}}, bias},
      {{"fc2.weight", SafeDType::kF16, {96, 64}}, RandomFloats(SafeDType::kF16, 96 * 64, 2)},
      {{"tok_embed.weight", SafeDType::kF32, {80, 48}}, RandomFloats(SafeDType::kF32, 80 * 48, 3)},
  };
  WriteCheckpoint(in, tensors, {{"format", "pt"}});
  std::string before;
  REQUIRE(ReadFileToString(in, &before).ok());

  CheckpointOptions o;
  o.compress.config.global_config = PalettizeConfig();
  o.compress.config.global_config->nbits = 3;
  CheckpointReport r1, r4;
  o.compress.threads = 1;
  REQUIRE(CompressCheckpoint(in, dir.path() + "/t1.safetensors", o, &r1).ok());
  o.compress.threads = 4;
  REQUIRE(CompressCheckpoint(in, dir.path() + "/t4.safetensors", o, &r4).ok());
  std::string t1, t4, after;
  REQUIRE(ReadFileToString(dir.path() + "/t1.safetensors", &t1).ok());
  REQUIRE(ReadFileToString(dir.path() + "/t4.safetensors", &t4).ok());
  REQUIRE(ReadFileToString(in, &after).ok());
  CHECK(t1 == t4);
  CHECK(after == before);
  r4.report.output = r1.report.output;
  CHECK(CheckpointReportToJson(r1, false) == CheckpointReportToJson(r4, false));
  CHECK(r1.report.palettized == 3);
  CHECK(r1.modules[3].type == "Embedding");

  SafeTensorsFile out, orig;
  REQUIRE(out.Open(dir.path() + "/t1.safetensors").ok());
  REQUIRE(orig.Open(in).ok());
  CHECK(t1.substr(0, out.header_end()) == before.substr(0, orig.header_end()));  // header kept byte for byte
  CHECK(std::memcmp(out.Find("fc1.bias")->data, bias.data(), bias.size()) == 0);
  for (const char* name : {"fc1.weight", "fc2.weight", "tok_embed.weight"}) {
    INFO(name);
    CHECK(Distinct(*out.Find(name)).size() <= 8);
    CHECK(Distinct(*orig.Find(name)).size() > 8);
    // The report's error is the dense output's.
    const SafeTensor& a = *orig.Find(name);
    const SafeTensor& b = *out.Find(name);
    double sse = 0;
    for (uint64_t i = 0; i < a.elements; ++i) sse += (a.At(i) - b.At(i)) * (a.At(i) - b.At(i));
    for (const WeightReport& w : r1.report.weights)
      if (w.name == name) CHECK(w.sse == Approx(sse).epsilon(1e-12));
  }

  // Packed: the tables of the dense output, and much smaller.
  o.packed = true;
  CheckpointReport rp;
  REQUIRE(CompressCheckpoint(in, dir.path() + "/p.safetensors", o, &rp).ok());
  SafeTensorsFile packed;
  REQUIRE(packed.Open(dir.path() + "/p.safetensors").ok());
  CHECK(packed.Find("fc1.weight") == nullptr);
  REQUIRE(packed.Find("fc1.weight.lut") != nullptr);
  CHECK(packed.Find("fc1.weight.lut")->shape == std::vector<uint64_t>{1, 1, 8, 1});
  CHECK(packed.Find("fc1.weight.lut")->dtype == SafeDType::kBF16);
  CHECK(packed.Find("fc1.weight.indices")->bytes == (64 * 96 * 3 + 7) / 8);
  CHECK(Distinct(*packed.Find("fc1.weight.lut")) == Distinct(*out.Find("fc1.weight")));
  CHECK(packed.metadata().at("palettize.version") == "1");
  CHECK(packed.metadata().at("format") == "pt");
  CHECK(std::filesystem::file_size(dir.path() + "/p.safetensors") < before.size() / 3);

  // An existing output needs overwrite; nothing else is left beside it.
  o.packed = false;
  CHECK(CompressCheckpoint(in, dir.path() + "/t1.safetensors", o, &r1).message() ==
        dir.path() + "/t1.safetensors: already exists (use overwrite to replace it)");
}
