// make_synthetic --layers N --hidden H --ffn F --out PATH [--seed S]
//
// Writes a transformer-shaped fp16 ML Program package directly, without coremltools (which cannot
// hold a 7B-parameter model in memory), for scripts/bench. Per layer, a chain of linear ops:
//
//   x[1,H] -> q, k, v, o: linear(H->H), weight [H,H] -> up: linear(H->F), weight [F,H]
//          -> down: linear(F->H), weight [H,F] -> next layer
//
// Layout written (../shared/coreml-format.md sections 1-3), modelled on what coremltools 9 writes
// for an iOS18 mb.linear chain (minus the zero biases, the metadata and the buildInfo attribute):
//   PATH/Manifest.json
//   PATH/Data/com.apple.CoreML/model.mlmodel        spec version 9, function "main", opset CoreML8
//   PATH/Data/com.apple.CoreML/weights/weight.bin   one fp16 blob per weight, in op order
//
// Values: Student-t with 4 degrees of freedom, scaled by 0.02 (heavy tails like trained weights),
// rounded to fp16. Each row has its own splitmix64 stream seeded from (seed, weight, row), so the
// bytes do not depend on the thread count. Memory: one buffer of the largest weight (BlobWriter
// takes a blob in one piece; 90 MB at H=4096, F=11008), filled row block by row block by every core.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "Model.pb.h"
#include "blob/blob_writer.h"
#include "util/half.h"

namespace {

namespace fs = std::filesystem;
namespace spec = CoreML::Specification;
namespace mil = CoreML::Specification::MILSpec;

constexpr uint32_t kBlobFloat16 = 1;                 // blob dtype code (coreml-format.md section 2)
constexpr int kArrayDataTypeFloat16 = 0x10000 | 16;  // ArrayFeatureType.ArrayDataType.FLOAT16
constexpr double kScale = 0.02;

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in (0, 1): never 0, so its log is finite.
double Uniform(uint64_t* state) { return (double(SplitMix64(state) >> 11) + 0.5) * 0x1p-53; }

// Student-t(4) = Z / sqrt(V / 4) with Z standard normal (Box-Muller) and V ~ chi^2(4) =
// -2 ln(U1 U2) (twice the sum of two unit exponentials).
void FillRow(uint64_t seed, uint16_t* out, size_t n) {
  uint64_t state = seed;
  for (size_t i = 0; i < n; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(Uniform(&state)));
    const double theta = 2.0 * M_PI * Uniform(&state);
    const double z[2] = {r * std::cos(theta), r * std::sin(theta)};
    for (size_t j = 0; j < 2 && i + j < n; ++j) {
      const double v = -2.0 * std::log(Uniform(&state) * Uniform(&state));
      out[i + j] = palettize::DoubleToHalfBits(kScale * z[j] / std::sqrt(v / 4.0));
    }
  }
}

void FillWeight(uint64_t seed, uint64_t weight_index, int64_t rows, int64_t cols, uint16_t* out) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  constexpr int64_t kBlockRows = 64;
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([=] {
      for (int64_t b = int64_t(t) * kBlockRows; b < rows; b += int64_t(threads) * kBlockRows) {
        for (int64_t r = b; r < std::min(rows, b + kBlockRows); ++r) {
          uint64_t s = seed ^ (weight_index * 0xD1B54A32D192ED03ull) ^ (uint64_t(r) << 1);
          SplitMix64(&s);  // decorrelate neighbouring seeds
          FillRow(s, out + r * cols, size_t(cols));
        }
      }
    });
  }
  for (auto& th : pool) th.join();
}

void SetTensorType(mil::ValueType* type, mil::DataType dtype, const std::vector<int64_t>& shape) {
  auto* tensor = type->mutable_tensortype();
  tensor->set_datatype(dtype);
  tensor->set_rank(int64_t(shape.size()));
  for (int64_t d : shape) tensor->add_dimensions()->mutable_constant()->set_size(uint64_t(d));
}

void SetName(mil::Operation* op, const std::string& name) {
  mil::Value& v = (*op->mutable_attributes())["name"];
  v.mutable_type()->mutable_tensortype()->set_datatype(mil::STRING);
  v.mutable_immediatevalue()->mutable_tensor()->mutable_strings()->add_values(name);
}

void AddConst(mil::Block* block, const std::string& name, const std::vector<int64_t>& shape,
              uint64_t offset) {
  mil::Operation* op = block->add_operations();
  op->set_type("const");
  mil::NamedValueType* out = op->add_outputs();
  out->set_name(name);
  SetTensorType(out->mutable_type(), mil::FLOAT16, shape);
  mil::Value& val = (*op->mutable_attributes())["val"];
  SetTensorType(val.mutable_type(), mil::FLOAT16, shape);
  val.mutable_blobfilevalue()->set_filename("@model_path/weights/weight.bin");
  val.mutable_blobfilevalue()->set_offset(offset);
  SetName(op, name);
}

void AddLinear(mil::Block* block, const std::string& name, const std::string& x, const std::string& weight,
               int64_t out_features) {
  mil::Operation* op = block->add_operations();
  op->set_type("linear");
  (*op->mutable_inputs())["x"].add_arguments()->set_name(x);
  (*op->mutable_inputs())["weight"].add_arguments()->set_name(weight);
  mil::NamedValueType* out = op->add_outputs();
  out->set_name(name);
  SetTensorType(out->mutable_type(), mil::FLOAT16, {1, out_features});
  SetName(op, name);
}

// Minimal protobuf wire encoding, for Model.description, which our proto subset leaves undeclared
// (it passes through as an unknown field).
void PutVarint(std::string* s, uint64_t v) {
  while (v >= 0x80) {
    s->push_back(char(v | 0x80));
    v >>= 7;
  }
  s->push_back(char(v));
}
void PutBytes(std::string* s, int field, const std::string& bytes) {
  PutVarint(s, uint64_t(field) << 3 | 2);
  PutVarint(s, bytes.size());
  s->append(bytes);
}

// FeatureDescription{name=1, type=3: FeatureType{multiArrayType=5: {shape=1 packed, dataType=2}}}
std::string FeatureDescription(const std::string& name, int64_t features) {
  std::string shape;
  PutVarint(&shape, 1);
  PutVarint(&shape, uint64_t(features));
  std::string array;
  PutBytes(&array, 1, shape);
  PutVarint(&array, 2 << 3);
  PutVarint(&array, kArrayDataTypeFloat16);
  std::string feature_type;
  PutBytes(&feature_type, 5, array);
  std::string fd;
  PutBytes(&fd, 1, name);
  PutBytes(&fd, 3, feature_type);
  return fd;
}

std::string Uuid(uint64_t* state) {
  const uint64_t a = SplitMix64(state), b = SplitMix64(state);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08X-%04X-4%03X-%04X-%012llX", unsigned(a >> 32),
                unsigned(a >> 16 & 0xFFFF), unsigned(a & 0xFFF), unsigned(0x8000 | (b >> 48 & 0x3FFF)),
                static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFull));
  return buf;
}

int Fail(const std::string& msg) {
  std::fprintf(stderr, "make_synthetic: %s\n", msg.c_str());
  return 2;
}

bool ParseInt(const char* text, int64_t* out) {
  char* end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 1) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t layers = 32, hidden = 4096, ffn = 11008, seed = 1;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc)
      return Fail("usage: make_synthetic --layers N --hidden H --ffn F --out PATH [--seed S]");
    const char* value = argv[++i];
    int64_t* target = flag == "--layers"   ? &layers
                      : flag == "--hidden" ? &hidden
                      : flag == "--ffn"    ? &ffn
                      : flag == "--seed"   ? &seed
                                           : nullptr;
    if (flag == "--out") {
      out_path = value;
    } else if (target == nullptr || !ParseInt(value, target)) {
      return Fail(flag + " " + value + ": unknown flag or not a positive integer");
    }
  }
  if (out_path.empty()) return Fail("--out PATH is required");
  if (fs::exists(out_path)) return Fail(out_path + ": exists");
  if (uint64_t(std::max(hidden, ffn)) * uint64_t(hidden) * 2 >= (uint64_t(1) << 31))
    return Fail("a weight of 2 GiB or more does not load in Core ML");

  const fs::path data = fs::path(out_path) / "Data" / "com.apple.CoreML";
  std::error_code ec;
  fs::create_directories(data / "weights", ec);
  if (ec) return Fail((data / "weights").string() + ": " + ec.message());

  palettize::BlobWriter blobs;
  palettize::Status st = blobs.Open((data / "weights" / "weight.bin").string());
  if (!st.ok()) return Fail(st.message());

  spec::Model model;
  model.set_specificationversion(9);  // iOS18
  mil::Program* program = model.mutable_mlprogram();
  program->set_version(1);
  mil::Function& main_fn = (*program->mutable_functions())["main"];
  mil::NamedValueType* input = main_fn.add_inputs();
  input->set_name("x");
  SetTensorType(input->mutable_type(), mil::FLOAT16, {1, hidden});
  main_fn.set_opset("CoreML8");
  mil::Block& block = (*main_fn.mutable_block_specializations())["CoreML8"];

  struct Proj {
    const char* name;
    int64_t out, in;
  };
  const Proj projs[] = {{"q_proj", hidden, hidden}, {"k_proj", hidden, hidden}, {"v_proj", hidden, hidden},
                        {"o_proj", hidden, hidden}, {"up_proj", ffn, hidden},   {"down_proj", hidden, ffn}};
  std::vector<uint16_t> buffer(size_t(std::max(hidden, ffn) * hidden));
  std::string x = "x";
  uint64_t weight_index = 0, total_params = 0;
  for (int64_t l = 0; l < layers; ++l) {
    for (const Proj& p : projs) {
      const std::string op = "layers_" + std::to_string(l) + "_" + p.name;
      FillWeight(uint64_t(seed), weight_index++, p.out, p.in, buffer.data());
      uint64_t offset = 0;
      st = blobs.Append(kBlobFloat16, buffer.data(), uint64_t(p.out * p.in) * 2, 0, &offset);
      if (!st.ok()) return Fail(st.message());
      AddConst(&block, op + "_weight", {p.out, p.in}, offset);
      AddLinear(&block, op, x, op + "_weight", p.out);
      x = op;
      total_params += uint64_t(p.out * p.in);
    }
    std::fprintf(stderr, "\rmake_synthetic: layer %lld/%lld", static_cast<long long>(l + 1),
                 static_cast<long long>(layers));
  }
  std::fprintf(stderr, "\n");
  block.add_outputs(x);
  st = blobs.Finish();
  if (!st.ok()) return Fail(st.message());

  std::string description;
  PutBytes(&description, 1, FeatureDescription("x", hidden));
  PutBytes(&description, 10, FeatureDescription(x, hidden));
  model.GetReflection()->MutableUnknownFields(&model)->AddLengthDelimited(2, description);
  {
    std::ofstream f(data / "model.mlmodel", std::ios::binary);
    if (!model.SerializeToOstream(&f) || !f.flush())
      return Fail((data / "model.mlmodel").string() + ": cannot write");
  }

  uint64_t uuid_state = uint64_t(seed) ^ 0x6D616B655F73796Eull;
  const std::string model_id = Uuid(&uuid_state), weights_id = Uuid(&uuid_state);
  std::ofstream manifest(fs::path(out_path) / "Manifest.json");
  manifest << "{\n    \"fileFormatVersion\": \"1.0.0\",\n    \"itemInfoEntries\": {\n"
           << "        \"" << model_id << "\": {\n"
           << "            \"author\": \"com.apple.CoreML\",\n"
           << "            \"description\": \"CoreML Model Specification\",\n"
           << "            \"name\": \"model.mlmodel\",\n"
           << "            \"path\": \"com.apple.CoreML/model.mlmodel\"\n        },\n"
           << "        \"" << weights_id << "\": {\n"
           << "            \"author\": \"com.apple.CoreML\",\n"
           << "            \"description\": \"CoreML Model Weights\",\n"
           << "            \"name\": \"weights\",\n"
           << "            \"path\": \"com.apple.CoreML/weights\"\n        }\n    },\n"
           << "    \"rootModelIdentifier\": \"" << model_id << "\"\n}\n";
  if (!manifest.flush()) return Fail(out_path + "/Manifest.json: cannot write");
  std::printf("%s: %llu weights, %llu parameters\n", out_path.c_str(),
              static_cast<unsigned long long>(weight_index), static_cast<unsigned long long>(total_params));
  return 0;
}
