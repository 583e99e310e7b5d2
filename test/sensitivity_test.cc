// Sensitivity-weighted k-means: the weighted optimum against brute force, the merged (histogram)
// paths against the general one, the safetensors reader, and the matching rule.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>

#include "MIL.pb.h"
#include "mil/dtype.h"
#include "mil/tensor_data.h"
#include "palettizer/weight_palettizer.h"
#include "safetensors/safetensors.h"
#include "sensitivity/sensitivity.h"
#include "test_util.h"
#include "util/file.h"
#include "util/half.h"

using namespace palettize;
using MT = CoreML::Specification::MILSpec::DataType;

namespace {

WeightPlan KMeansPlan(int nbits, uint64_t group_size, int axis = 0) {
  WeightPlan p;
  p.palettize = true;
  p.config.mode = PalettizeMode::kKMeans;
  p.config.nbits = nbits;
  p.channel_axis = axis;
  p.group_size = group_size;
  return p;
}

double WeightedError(const std::vector<double>& x, const std::vector<double>& s,
                     const std::vector<double>& y) {
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += s[i] * (x[i] - y[i]) * (x[i] - y[i]);
  return e;
}

// The weighted optimum over every assignment of the elements to at most k clusters, each at its
// weighted mean (a cluster of weight 0 costs nothing wherever it is).
double BruteForceAssignments(const std::vector<double>& x, const std::vector<double>& s, size_t k) {
  const size_t n = x.size();
  size_t total = 1;
  for (size_t i = 0; i < n; ++i) total *= k;
  double best = std::numeric_limits<double>::infinity();
  for (size_t code = 0; code < total; ++code) {
    std::vector<double> sw(k, 0), swx(k, 0);
    std::vector<size_t> a(n);
    for (size_t i = 0, c = code; i < n; ++i, c /= k) a[i] = c % k;
    for (size_t i = 0; i < n; ++i) sw[a[i]] += s[i], swx[a[i]] += s[i] * x[i];
    double e = 0;
    for (size_t i = 0; i < n; ++i)
      if (sw[a[i]] > 0) e += s[i] * std::pow(x[i] - swx[a[i]] / sw[a[i]], 2);
    best = std::min(best, e);
  }
  return best;
}

// The weighted optimum over every split of the sorted elements into at most k contiguous runs.
double BruteForceContiguous(std::vector<double> x, std::vector<double> s, size_t k) {
  std::vector<size_t> order(x.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> xs, ss;
  for (size_t i : order) xs.push_back(x[i]), ss.push_back(s[i]);
  const size_t n = xs.size();
  auto cost = [&](size_t b, size_t e) {
    double w = 0, wx = 0;
    for (size_t i = b; i < e; ++i) w += ss[i], wx += ss[i] * xs[i];
    double c = 0;
    if (w > 0)
      for (size_t i = b; i < e; ++i) c += ss[i] * std::pow(xs[i] - wx / w, 2);
    return c;
  };
  double best = std::numeric_limits<double>::infinity();
  // Each of the n-1 gaps is a cut or not; at most k-1 cuts.
  for (size_t mask = 0; mask < (size_t(1) << (n - 1)); ++mask) {
    if (size_t(__builtin_popcountll(mask)) > k - 1) continue;
    double e = 0;
    size_t b = 0;
    for (size_t g = 0; g < n - 1; ++g)
      if (mask >> g & 1) e += cost(b, g + 1), b = g + 1;
    best = std::min(best, e + cost(b, n));
  }
  return best;
}

// A .safetensors file in memory: `header` is the JSON text, `data` the bytes after it.
std::string SafeFile(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(&out[0], &n, 8);
  return out + header + data;
}

std::string Floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

Status Parse(const std::string& bytes, std::vector<SafeTensor>* tensors) {
  std::map<std::string, std::string> meta;
  return ParseSafeTensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "s.safetensors",
                          tensors, &meta);
}

std::string ParseError(const std::string& bytes) {
  std::vector<SafeTensor> t;
  Status st = Parse(bytes, &t);
  return st.ok() ? "ok" : st.message();
}

}  // namespace

TEST_CASE("weighted k-means: the exact optimum, with zero sensitivities, against brute force",
          "[sensitivity]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  std::uniform_int_distribution<int> coin(0, 3);
  std::uniform_real_distribution<double> weight(0.0, 10.0);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t n = 3 + size_t(trial % 6);  // 3..8 elements
    const int nbits = trial % 2 ? 1 : 2;     // 2 or 4 entries
    const size_t k = size_t(1) << nbits;
    std::vector<double> x(n), s(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = double(float(value(rng)));
      if (i > 0 && coin(rng) == 0) x[i] = x[i - 1];  // repeated values merge
      s[i] = coin(rng) == 0 ? 0.0 : weight(rng);
    }
    if (trial % 7 == 0) s.assign(n, 0.0), s[0] = 1.0;  // one element decides
    const TensorShape shape = MakeShape({n, 1}, MT::FLOAT32);
    SafeTensor t;
    const ElementWeights w = F64Sensitivities(s, &t);
    PalettizedWeight p;
    std::string why;
    REQUIRE(PalettizeWeight(x, shape, KMeansPlan(nbits, n), {1, 2, 4}, &p, &why, &w));
    const double assignments = BruteForceAssignments(x, s, k);
    const double contiguous = BruteForceContiguous(x, s, k);
    INFO("trial " << trial);
    CHECK(contiguous == Approx(assignments).margin(1e-12));
    // The table is rounded to float32, so the achieved error may exceed the optimum by a hair.
    CHECK(p.weighted_sse == Approx(assignments).epsilon(1e-6).margin(1e-9));
    CHECK(p.weighted_sse == Approx(WeightedError(x, s, p.decoded)).epsilon(1e-12).margin(1e-15));
    CHECK(p.sse ==
          Approx(WeightedError(x, std::vector<double>(n, 1.0), p.decoded)).epsilon(1e-12).margin(1e-15));
  }
}

TEST_CASE("weighted k-means: merged fast paths give the general path's tables", "[sensitivity]") {
  std::mt19937 rng(3);
  std::normal_distribution<double> value(0.0, 0.05);
  std::uniform_int_distribution<int> sens(0, 5);  // integers: sums are exact in any order
  for (int dtype : {int(MT::FLOAT16), int(MT::FLOAT32)}) {
    for (uint64_t group : {uint64_t(48), uint64_t(8)}) {  // per_tensor, per_grouped_channel
      for (int axis : {0, 1}) {
        const TensorShape shape = MakeShape({48, 24, 3}, dtype);
        const uint64_t g = axis == 0 ? group : std::min<uint64_t>(group, 24);
        std::vector<double> v(shape.elements), s(shape.elements);
        for (size_t i = 0; i < v.size(); ++i) {
          v[i] = RoundToDType(value(rng), dtype);
          if (i % 5 == 0) v[i] = RoundToDType(0.01 * double(i % 11), dtype);  // many repeats
          s[i] = sens(rng);
        }
        const std::string raw = EncodeElements(v, dtype);
        SafeTensor t;
        const ElementWeights w = F64Sensitivities(s, &t);
        const WeightPlan plan = KMeansPlan(3, g, axis);
        PalettizedWeight general, fast, plain;
        std::string why;
        REQUIRE(PalettizeWeight(v, shape, plan, {1, 2, 3, 4, 6, 8}, &general, &why, &w));
        REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), shape, plan,
                                   {1, 2, 3, 4, 6, 8}, true, &fast, &why, &w));
        REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), shape, plan,
                                   {1, 2, 3, 4, 6, 8}, true, &plain, &why));
        INFO("dtype " << dtype << " group " << g << " axis " << axis);
        CHECK(fast.lut == general.lut);
        CHECK(fast.indices == general.indices);
        CHECK(fast.decoded == general.decoded);
        CHECK(fast.sse == Approx(general.sse).epsilon(1e-12));
        CHECK(fast.weighted_sse == Approx(general.weighted_sse).epsilon(1e-12));
        CHECK(fast.weighted_sse == Approx(WeightedError(v, s, fast.decoded)).epsilon(1e-12));
        // The weighted tables are better at the weighted objective than the plain ones, and the
        // plain ones at the plain objective.
        CHECK(fast.lut != plain.lut);
        CHECK(fast.weighted_sse <= WeightedError(v, s, plain.decoded) * (1 + 1e-9));
        CHECK(plain.sse <= fast.sse * (1 + 1e-9));
      }
    }
  }
}

TEST_CASE("weighted k-means: per-channel scale weights are s^2 times the sensitivity", "[sensitivity]") {
  std::mt19937 rng(5);
  std::normal_distribution<double> value(0.0, 0.05);
  std::uniform_real_distribution<double> sens(0.0, 4.0);
  const TensorShape shape = MakeShape({16, 12}, MT::FLOAT16);
  std::vector<double> v(shape.elements), s(shape.elements);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = RoundToDType(value(rng) * double(1 + i % 12), MT::FLOAT16), s[i] = sens(rng);
  SafeTensor t;
  const ElementWeights w = F64Sensitivities(s, &t);
  WeightPlan plan = KMeansPlan(2, 16, 0);
  plan.config.enable_per_channel_scale = true;
  PalettizedWeight weighted, plain;
  std::string why;
  REQUIRE(PalettizeWeight(v, shape, plan, {1, 2, 4}, &weighted, &why, &w));
  REQUIRE(PalettizeWeight(v, shape, plan, {1, 2, 4}, &plain, &why));
  CHECK(weighted.weighted_sse == Approx(WeightedError(v, s, weighted.decoded)).epsilon(1e-12));
  // Rounding through the scale can cost a little; the weighted tables still win clearly.
  CHECK(weighted.weighted_sse < WeightedError(v, s, plain.decoded));
}

TEST_CASE("weighted k-means: elements of huge sensitivity are reproduced exactly", "[sensitivity]") {
  for (int dtype : {int(MT::FLOAT16), int(MT::FLOAT32)}) {
    std::mt19937 rng(9);
    std::normal_distribution<double> value(0.0, 0.05);
    const TensorShape shape = MakeShape({64, 32}, dtype);
    std::vector<double> v(shape.elements), s(shape.elements, 1.0);
    for (auto& x : v) x = RoundToDType(value(rng), dtype);
    const std::vector<size_t> heavy = {5, 700, 1500};
    for (size_t i : heavy) s[i] = 1e15;
    const std::string raw = EncodeElements(v, dtype);
    SafeTensor t;
    const ElementWeights w = F64Sensitivities(s, &t);
    PalettizedWeight p, plain;
    std::string why;
    REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), shape, KMeansPlan(2, 64), {2},
                               true, &p, &why, &w));
    REQUIRE(PalettizeWeightRaw(reinterpret_cast<const uint8_t*>(raw.data()), shape, KMeansPlan(2, 64), {2},
                               true, &plain, &why));
    for (size_t i : heavy) CHECK(p.decoded[i] == v[i]);
    size_t exact_plain = 0;
    for (size_t i : heavy) exact_plain += plain.decoded[i] == v[i];
    CHECK(exact_plain < heavy.size());
  }
}

TEST_CASE("sensitivity normalisation follows coremltools' SKMPalettizer", "[sensitivity]") {
  SafeTensor t;
  std::vector<double> s = {0.0, 2.0, 8.0, 1e-20 * 8};
  ElementWeights w = F64Sensitivities(s, &t);
  w.normalize = true;
  w.max = 8.0;
  w.min_positive = 1e-20 * 8;
  std::vector<double> out(4);
  w.Read(0, 4, out.data());
  CHECK(out == std::vector<double>{1e-12, 0.25, 1.0, 1e-12});
  std::vector<double> zeros = {0.0, 0.0};
  ElementWeights z = F64Sensitivities(zeros, &t);
  z.normalize = true;
  z.Read(0, 2, out.data());
  CHECK(out[0] == 1.0);
  CHECK(out[1] == 1.0);
}

TEST_CASE("safetensors: a valid file, every dtype read as double", "[safetensors]") {
  std::string data = Floats({1.5f, -2.0f, 0.25f, 8.0f});
  const uint16_t half[2] = {0x3C00, 0xC000};  // 1, -2
  const uint16_t bf16[2] = {0x3F80, 0x4040};  // 1, 3
  const double f64[1] = {-0.125};
  data.append(reinterpret_cast<const char*>(half), 4);
  data.append(reinterpret_cast<const char*>(bf16), 4);
  data.append(reinterpret_cast<const char*>(f64), 8);
  const std::string file = SafeFile(
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("h":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[20,24]},)"
      R"("d":{"dtype":"F64","shape":[],"data_offsets":[24,32]},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[32,32]}}  )",
      data);
  std::vector<SafeTensor> t;
  REQUIRE(Parse(file, &t).ok());
  REQUIRE(t.size() == 5);
  CHECK(t[0].name == "w");
  CHECK(DescribeSafeTensor(t[0]) == "F32 [2, 2]");
  CHECK(t[0].At(3) == 8.0);
  CHECK(t[1].At(0) == 1.0);
  CHECK(t[1].At(1) == -2.0);
  CHECK(t[2].At(1) == 3.0);
  CHECK(t[3].elements == 1);
  CHECK(t[3].At(0) == -0.125);
  CHECK(t[4].elements == 0);
  std::vector<double> out(4);
  t[0].Read(1, 3, out.data());
  CHECK(out[0] == -2.0);
  CHECK(out[2] == 8.0);

  TempDir dir;
  const std::string path = dir.path() + "/valid.safetensors";
  REQUIRE(WriteStringToFile(path, file).ok());
  SafeTensorsFile f;
  REQUIRE(f.Open(path).ok());
  CHECK(f.metadata().at("format") == "pt");
  REQUIRE(f.Find("h") != nullptr);
  CHECK(f.Find("h")->At(1) == -2.0);
  CHECK(f.Find("x") == nullptr);
}

TEST_CASE("safetensors: corrupt files are refused with one line naming the file and tensor",
          "[safetensors]") {
  const std::string data = Floats({1, 2, 3, 4});
  auto entry = [](const std::string& body) { return R"({"w":{)" + body + "}}"; };
  const std::string good = entry(R"("dtype":"F32","shape":[2,2],"data_offsets":[0,16])");
  REQUIRE(ParseError(SafeFile(good, data)) == "ok");

  CHECK(ParseError("abc") == "s.safetensors: 3 bytes, too short for a safetensors header length (8 bytes)");
  // Truncated: the header, then the data.
  const std::string whole = SafeFile(good, data);
  CHECK(ParseError(whole.substr(0, 20)) ==
        "s.safetensors: header length " + std::to_string(good.size()) + " past end of file (20 bytes)");
  CHECK(ParseError(whole.substr(0, whole.size() - 1)) ==
        "s.safetensors: tensor 'w': data_offsets [0, 16] past end of data (15 bytes)");
  std::string huge(8, '\0');
  huge[4] = 1;  // 2^32
  CHECK(ParseError(huge + "{}") == "s.safetensors: header length 4294967296 is more than 100000000 bytes");
  CHECK(ParseError(SafeFile(R"({"w": [1,)", data)) == "s.safetensors: header is not valid JSON (at byte 17)");
  CHECK(ParseError(SafeFile("[1]", "")) == "s.safetensors: header is not a JSON object");
  CHECK(ParseError(SafeFile(R"({"w":1})", "")) == "s.safetensors: tensor 'w': not an object");
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F32","shape":[4])"), data)) ==
        "s.safetensors: tensor 'w': no data_offsets");
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F17","shape":[4],"data_offsets":[0,16])"), data)) ==
        "s.safetensors: tensor 'w': dtype \"F17\" is not one of BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, "
        "F32, "
        "U64, I64, F64");
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F32","shape":[-4],"data_offsets":[0,16])"), data)) ==
        "s.safetensors: tensor 'w': shape is not a list of non-negative integers");
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,16])"),
                            data)) ==
        "s.safetensors: tensor 'w': shape [4294967296, 4294967296] has more than 2^64 bytes");
  // Lying offsets.
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F32","shape":[4],"data_offsets":[0,12])"), data)) ==
        "s.safetensors: tensor 'w': data_offsets [0, 12] hold 12 bytes, but F32 [4] needs 16");
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F32","shape":[4],"data_offsets":[16,0])"), data)) ==
        "s.safetensors: tensor 'w': data_offsets [16, 0] end before they begin");
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F32","shape":[4],"data_offsets":[8,24])"), data)) ==
        "s.safetensors: tensor 'w': data_offsets [8, 24] past end of data (16 bytes)");
  CHECK(ParseError(SafeFile(entry(R"("dtype":"F32","shape":[4],"data_offsets":[0])"), data)) ==
        "s.safetensors: tensor 'w': data_offsets is not a list of two non-negative integers");
  CHECK(ParseError(SafeFile(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
                            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                            data)) ==
        "s.safetensors: tensor 'b': data_offsets [8, 16] overlap tensor 'a' at [0, 12]");
  CHECK(ParseError(SafeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                            data)) == "s.safetensors: tensor 'a' is listed twice");
  CHECK(ParseError(SafeFile(R"({"__metadata__":{"k":1}})", "")) ==
        "s.safetensors: __metadata__ is not an object of strings");
}

TEST_CASE("sensitivity files: name and value matches, and what is refused", "[sensitivity]") {
  // The const: float16 [2, 2] named "w_to_fp16" with values 1, 2, 3, 4.
  ConstWeight w;
  w.name = "w_to_fp16";
  w.shape = MakeShape({2, 2}, MT::FLOAT16);
  const std::string values = EncodeElements({1, 2, 3, 4}, MT::FLOAT16);
  const uint8_t* data = reinterpret_cast<const uint8_t*>(values.data());
  TempDir dir;
  const std::string path = dir.path() + "/match.safetensors";
  auto open = [&](const std::string& header, const std::string& bytes, SensitivitySet* set) {
    REQUIRE(WriteStringToFile(path, SafeFile(header, bytes)).ok());
    return set->Open(path, false);
  };
  SensitivityMatch m;
  {
    SensitivitySet set;
    REQUIRE(open(R"({"w_to_fp16":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})", Floats({1, 0, 2, 0}),
                 &set)
                .ok());
    REQUIRE(set.Match(w, data, &m).ok());
    CHECK(m.match == "name");
    CHECK(m.tensor == "w_to_fp16");
    CHECK(set.Unused().empty());
  }
  {
    // Training code's names: "lin.weight" holds the values (float32, rounded to float16 they are
    // the const's), "lin.weight.sensitivity" the sensitivities; "other" matches nothing.
    SensitivitySet set;
    REQUIRE(open(R"({"lin.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                 R"("lin.weight.sensitivity":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]},)"
                 R"("other":{"dtype":"F32","shape":[1],"data_offsets":[32,36]}})",
                 Floats({1.0001f, 2, 3, 4, 1, 1, 1, 1, 1}), &set)
                .ok());
    REQUIRE(set.Match(w, data, &m).ok());
    CHECK(m.match == "values");
    CHECK(m.key == "lin.weight");
    CHECK(m.tensor == "lin.weight.sensitivity");
    CHECK(set.Unused() == std::vector<std::string>{"other"});
    ConstWeight v = w;
    v.name = "v";
    const std::string different = EncodeElements({1, 2, 3, 5}, MT::FLOAT16);
    REQUIRE(set.Match(v, reinterpret_cast<const uint8_t*>(different.data()), &m).ok());
    CHECK(m.key.empty());
  }
  {
    SensitivitySet set;
    REQUIRE(
        open(R"({"w_to_fp16":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", Floats({1, 1, 1, 1}), &set)
            .ok());
    Status st = set.Match(w, data, &m);
    CHECK(st.code() == Status::Code::kInvalidInput);
    CHECK(st.message() == path + ": tensor 'w_to_fp16' is F32 [4], but const 'w_to_fp16' is float16 [2, 2]");
  }
  for (const auto& [bad, text] :
       std::vector<std::pair<float, std::string>>{{-0.5f, "-0.5"}, {NAN, "NaN"}, {INFINITY, "Inf"}}) {
    SensitivitySet set;
    Status st = open(R"({"w_to_fp16":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}})",
                     Floats({1, 1, bad, 1}), &set);
    CHECK(st.code() == Status::Code::kInvalidInput);
    CHECK(st.message() ==
          path + ": tensor 'w_to_fp16': element 2 is " + text + "; sensitivities must be finite and >= 0");
  }
  {
    SensitivitySet set;
    Status st = open(R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                     R"("a.sensitivity":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})",
                     Floats({1, 1, 1, 1, 1, 1, 1, 1}), &set);
    CHECK(st.message() == path + ": tensor 'a.sensitivity' is F32 [4], but tensor 'a' is F32 [2, 2]");
  }
}

TEST_CASE("weighted vector k-means: heavy vectors exact, equal sensitivities give the plain tables",
          "[sensitivity]") {
  for (int dtype : {int(MT::FLOAT16), int(MT::FLOAT32)}) {
    std::mt19937 rng(31);
    std::normal_distribution<double> value(0.0, 0.05);
    const TensorShape shape = MakeShape({64, 32}, dtype);
    std::vector<double> v(shape.elements);
    for (auto& x : v) x = RoundToDType(value(rng), dtype);
    const std::string raw = EncodeElements(v, dtype);
    const auto* data = reinterpret_cast<const uint8_t*>(raw.data());
    WeightPlan plan = KMeansPlan(3, 64);
    plan.config.cluster_dim = 2;
    PalettizedWeight plain;
    std::string why;
    REQUIRE(PalettizeWeightRaw(data, shape, plan, {3}, true, &plain, &why));

    // One element of huge sensitivity makes its whole vector (channels 2j, 2j+1) heavy.
    std::vector<double> s(shape.elements, 1.0);
    const std::vector<size_t> heavy = {5, 700, 1500, 2047};
    for (size_t i : heavy) s[i] = 1e15;
    SafeTensor t;
    const ElementWeights w = F64Sensitivities(s, &t);
    PalettizedWeight p;
    REQUIRE(PalettizeWeightRaw(data, shape, plan, {3}, true, &p, &why, &w));
    size_t exact_plain = 0;
    for (size_t i : heavy) {
      const size_t row = i / 32, col = i % 32, first = (row & ~size_t(1)) * 32 + col;
      for (size_t e : {first, first + 32}) CHECK(p.decoded[e] == v[e]);
      exact_plain += plain.decoded[first] == v[first] && plain.decoded[first + 32] == v[first + 32];
    }
    CHECK(exact_plain < heavy.size());
    CHECK(p.weighted_sse == Approx(WeightedError(v, s, p.decoded)).epsilon(1e-12));
    CHECK(p.sse >= plain.sse * (1 - 1e-9));

    // Equal sensitivities: the plain tables and indices, bit for bit.
    const std::vector<double> same(shape.elements, 0.25);
    SafeTensor t2;
    const ElementWeights w2 = F64Sensitivities(same, &t2);
    PalettizedWeight q;
    REQUIRE(PalettizeWeightRaw(data, shape, plan, {3}, true, &q, &why, &w2));
    CHECK(q.lut == plain.lut);
    CHECK(q.indices == plain.indices);
    CHECK(q.decoded == plain.decoded);
    CHECK(q.weighted_sse == Approx(0.25 * plain.sse).epsilon(1e-12));
  }
}

// Matched sensitivities are read from the file with pread (no page of it stays resident): the
// values are the mapping's, in every dtype, across read pieces, normalised or not; and value
// matches compare whole tensors across chunks.
TEST_CASE("sensitivity files: reads through the file equal the mapping's", "[sensitivity]") {
  const uint64_t n = 20000;  // several 4096-element read pieces and a 16384-element compare chunk
  std::mt19937 rng(41);
  std::uniform_real_distribution<float> u(0.0f, 3.0f);
  std::vector<float> f32(n);
  for (auto& x : f32) x = u(rng);
  f32[7] = 0;
  std::string f16, f64, bf16;
  for (float x : f32) {
    const uint16_t h = DoubleToHalfBits(x);
    f16.append(reinterpret_cast<const char*>(&h), 2);
    const double d = x;
    f64.append(reinterpret_cast<const char*>(&d), 8);
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    const uint16_t b = uint16_t(bits >> 16);
    bf16.append(reinterpret_cast<const char*>(&b), 2);
  }
  // The const "v" holds f32's values; tensor "orig" holds them too (a value match).
  const std::string raw = Floats(f32);
  std::string header = "{";
  std::string bytes;
  auto add = [&](const std::string& name, const std::string& dtype, const std::string& data) {
    header += (header.size() > 1 ? "," : "") + std::string("\"") + name + "\":{\"dtype\":\"" + dtype +
              "\",\"shape\":[" + std::to_string(n) + "],\"data_offsets\":[" + std::to_string(bytes.size()) +
              "," + std::to_string(bytes.size() + data.size()) + "]}";
    bytes += data;
  };
  add("a", "F16", f16);
  add("b", "F32", raw);
  add("c", "F64", f64);
  add("d", "BF16", bf16);
  add("orig", "F32", raw);
  add("orig.sensitivity", "F16", f16);
  header += "}";
  TempDir dir;
  const std::string path = dir.path() + "/read.safetensors";
  REQUIRE(WriteStringToFile(path, SafeFile(header, bytes)).ok());
  for (bool normalize : {false, true}) {
    SensitivitySet set;
    REQUIRE(set.Open(path, normalize).ok());
    for (const char* name : {"a", "b", "c", "d"}) {
      ConstWeight w;
      w.name = name;
      w.shape = MakeShape({n}, MT::FLOAT32);
      SensitivityMatch m;
      REQUIRE(set.Match(w, nullptr, &m).ok());
      REQUIRE(m.match == "name");
      CHECK(m.weights.fd >= 0);
      CHECK_FALSE(m.weights.mapped);
      ElementWeights mapped = m.weights;
      mapped.fd = -1;
      for (auto [begin, count] :
           std::vector<std::pair<uint64_t, uint64_t>>{{0, n}, {1, 4097}, {4095, 9000}, {n - 3, 3}}) {
        std::vector<double> x(count), y(count);
        m.weights.Read(begin, count, x.data());
        mapped.Read(begin, count, y.data());
        CHECK(x == y);
      }
    }
    ConstWeight v;
    v.name = "v";
    v.shape = MakeShape({n}, MT::FLOAT32);
    SensitivityMatch m;
    REQUIRE(set.Match(v, reinterpret_cast<const uint8_t*>(raw.data()), &m).ok());
    CHECK(m.match == "values");
    CHECK(m.tensor == "orig.sensitivity");
    std::vector<float> other = f32;
    other[n - 1] += 1;  // differs only in the last element, after the first compare chunk
    const std::string raw2 = Floats(other);
    REQUIRE(set.Match(v, reinterpret_cast<const uint8_t*>(raw2.data()), &m).ok());
    CHECK(m.key.empty());
  }
}
