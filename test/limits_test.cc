// Issue 12, items 7 and 8: the parsers stay linear in the size of their input (R3: safetensors
// headers, R4: YAML configs). Each case names the issue's label; the timing bounds are generous
// guards against a quadratic step (which takes minutes at these sizes), not benchmarks.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "palettize/config.h"
#include "safetensors/name_index.h"
#include "safetensors/safetensors.h"

using namespace palettize;

namespace {

// Wall and CPU seconds since construction: on a shared machine the CPU time is the steadier number.
class Stopwatch {
 public:
  double wall() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0_).count();
  }
  double cpu() const { return double(std::clock() - cpu0_) / CLOCKS_PER_SEC; }

 private:
  std::chrono::steady_clock::time_point wall0_ = std::chrono::steady_clock::now();
  std::clock_t cpu0_ = std::clock();
};

std::string HeaderFile(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t len = header.size();
  std::memcpy(&out[0], &len, 8);
  return out + header + std::string(data_bytes, '\0');
}

// A .safetensors file of `n` one-element F32 tensors, listed in reverse order of their data, each
// entry ending with `extra` (another field sends the header to the general reader).
std::string ManyTensors(size_t n, const std::string& extra = "") {
  std::string header = "{\"__metadata__\": {\"format\": \"pt\"}";
  for (size_t i = n; i-- > 0;)
    header += ", \"layers." + std::to_string(i) +
              ".bias\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [" + std::to_string(4 * i) +
              ", " + std::to_string(4 * i + 4) + "]" + extra + "}";
  header += "}";
  return HeaderFile(header, 4 * n);
}

std::string ParseError(const std::string& bytes) {
  std::vector<SafeTensor> tensors;
  std::map<std::string, std::string> meta;
  const Status st = ParseSafeTensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                     "s.safetensors", &tensors, &meta);
  return st.ok() ? "ok" : st.message();
}

// 200k op (or module) names, each with its own config.
std::string ManyKeys(bool torch, size_t n) {
  std::string text = torch ? "global_config:\n  n_bits: 4\nmodule_name_configs:\n"
                           : "config_type: OpPalettizerConfig\nglobal_config:\n  mode: kmeans\n  nbits: 4\n"
                             "op_name_configs:\n";
  for (size_t i = 0; i < n; ++i)
    text += torch ? "  layers." + std::to_string(i) + ".dense:\n    n_bits: 2\n"
                  : "  op_" + std::to_string(i) + ":\n    mode: kmeans\n    nbits: 2\n";
  return text;
}

}  // namespace

// Parses `bytes` (n tensors) and reports the time; the wall seconds, or a failed check.
static double ParseTimed(const std::string& label, size_t n, const std::string& bytes,
                         std::vector<SafeTensor>* tensors, std::map<std::string, std::string>* meta) {
  const Stopwatch watch;
  const Status st = ParseSafeTensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                                     "big.safetensors", tensors, meta);
  const double seconds = watch.wall();
  WARN(label << ": " << n << " tensors, header " << bytes.size() - 4 * n - 8 << " bytes, parsed in "
             << seconds << " s (" << watch.cpu() << " s CPU)");
  INFO(st.message());
  REQUIRE(st.ok());
  REQUIRE(tensors->size() == n);
  return seconds;
}

TEST_CASE("R3: a safetensors header of 1M tensors parses in linear time", "[safetensors][limits]") {
  const size_t n = 1'000'000;
  std::vector<SafeTensor> tensors;
  std::map<std::string, std::string> meta;
  const double seconds = ParseTimed("R3", n, ManyTensors(n), &tensors, &meta);
  // In the order of their data, and the metadata kept.
  CHECK(tensors.front().name == "layers.0.bias");
  CHECK(tensors.back().name == "layers.999999.bias");
  CHECK(meta.at("format") == "pt");
  CHECK(seconds < 20);
}

TEST_CASE("R3: entries of an unusual form take the general reader, linear too", "[safetensors][limits]") {
  const size_t n = 800'000;  // a header of ~85 MB (the limit is 100 MB)
  const std::string bytes = ManyTensors(n, R"(, "note": [null])");
  std::vector<SafeTensor> tensors;
  std::map<std::string, std::string> meta;
  const double seconds = ParseTimed("R3 (general reader)", n, bytes, &tensors, &meta);
  CHECK(tensors.back().data == reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size() - 4);
  CHECK(seconds < 30);
}

TEST_CASE("R3: the streaming header reader reports what the whole-document parse did",
          "[safetensors][limits]") {
  const std::string a = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  const std::string b = R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})";
  // The first name given twice in file order, before any entry's own error.
  CHECK(ParseError(HeaderFile("{" + b + "," + a + R"(,"z":1,"a":2,"b":3})", 8)) ==
        "s.safetensors: tensor 'a' is listed twice");
  // Of several bad entries, the one first in name order, wherever it sits in the file.
  CHECK(ParseError(HeaderFile(R"({"z":1,"m":{"dtype":"F32"},"c":[]})", 0)) ==
        "s.safetensors: tensor 'c': not an object");
  // A syntax error after a duplicate still wins, and so does one after a header that is no object.
  CHECK(ParseError(HeaderFile("{" + a + "," + a + ",}", 8)) ==
        "s.safetensors: header is not valid JSON (at byte " + std::to_string(8 + 2 * a.size() + 3) + ")");
  CHECK(ParseError(HeaderFile("[1, {]", 0)) == "s.safetensors: header is not valid JSON (at byte 13)");
  // Nested values inside an entry, and a repeated field inside one (the last counts, as in a
  // JSON object read whole).
  CHECK(ParseError(HeaderFile(R"({"w":{"dtype":{"x":[1,{"y":[]}]},"shape":[1],"data_offsets":[0,4]}})", 4)) ==
        "s.safetensors: tensor 'w': dtype {\"x\":[1,{\"y\":[]}]} is not one of BOOL, U8, I8, U16, I16, F16, "
        "BF16, "
        "U32, I32, F32, U64, I64, F64");
  CHECK(ParseError(HeaderFile(R"({"w":{"dtype":"F16","shape":[1],"dtype":"F32","data_offsets":[0,4]}})",
                              4)) == "ok");
  CHECK(ParseError(HeaderFile(R"({"__metadata__":{"k":"v","n":{"deep":"x"}}})", 0)) ==
        "s.safetensors: __metadata__ is not an object of strings");
  // Entries of an unusual form (another key, an integer in __metadata__ after a good entry) are
  // read by the general reader, with the same results and errors.
  CHECK(ParseError(HeaderFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":{"y":[null]}}})",
                              4)) == "ok");
  CHECK(ParseError(HeaderFile("{" + a + R"(,"__metadata__":{"k":"v","n":1}})", 4)) ==
        "s.safetensors: __metadata__ is not an object of strings");
  CHECK(ParseError(HeaderFile(R"({"w":{"dtype":"F32","shape":[1]}})", 4)) ==
        "s.safetensors: tensor 'w': no data_offsets");
  CHECK(ParseError(HeaderFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 4)) ==
        "s.safetensors: tensor 'w': data_offsets is not a list of two non-negative integers");
  // The general reader places the data as the fast one does.
  for (const std::string extra : {"", R"(,"x":[1])"}) {
    INFO("extra field: " << extra);
    const std::string two = HeaderFile(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8])" + extra +
                                           R"(},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})",
                                       8);
    std::vector<SafeTensor> t;
    std::map<std::string, std::string> m;
    REQUIRE(
        ParseSafeTensors(reinterpret_cast<const uint8_t*>(two.data()), two.size(), "s.safetensors", &t, &m)
            .ok());
    REQUIRE(t.size() == 2);
    CHECK(t[0].name == "a");
    CHECK(t[0].data == reinterpret_cast<const uint8_t*>(two.data()) + two.size() - 8);
    CHECK(t[1].name == "b");
    CHECK(t[1].data == reinterpret_cast<const uint8_t*>(two.data()) + two.size() - 4);
  }
  // Errors the fast reader finds itself: in name order too.
  CHECK(ParseError(HeaderFile(R"({"z":{"dtype":"F17","shape":[1],"data_offsets":[0,4]},)"
                              R"("y":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})",
                              4)) ==
        "s.safetensors: tensor 'y': data_offsets [0, 4] hold 4 bytes, but F32 [2] needs 8");
  // Empty tensors at one offset come out in name order, before the tensor starting there.
  std::vector<SafeTensor> tensors;
  std::map<std::string, std::string> meta;
  const std::string file = HeaderFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                      R"("y":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},)"
                                      R"("x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
                                      4);
  REQUIRE(ParseSafeTensors(reinterpret_cast<const uint8_t*>(file.data()), file.size(), "s.safetensors",
                           &tensors, &meta)
              .ok());
  REQUIRE(tensors.size() == 3);
  CHECK(tensors[0].name == "x");
  CHECK(tensors[1].name == "y");
  CHECK(tensors[2].name == "w");
}

TEST_CASE("R4: a YAML config of 200k op_name_configs (or module_name_configs) loads in linear time",
          "[config][limits]") {
  const size_t n = 200'000;
  for (const bool torch : {false, true}) {
    const std::string text = ManyKeys(torch, n);
    OptimizationConfig c;
    const Stopwatch watch;
    const Status st = torch ? ParseTorchPalettizerConfig(text, "big.yaml", &c)
                            : ParseOptimizationConfig(text, "big.yaml", &c);
    const double seconds = watch.wall();
    WARN("R4: " << (torch ? "module_name_configs" : "op_name_configs") << ", " << n << " keys, "
                << text.size() << " bytes, parsed in " << seconds << " s (" << watch.cpu() << " s CPU)");
    INFO(st.message());
    REQUIRE(st.ok());
    REQUIRE(c.op_name_configs.size() == n);
    const std::string last = torch ? "layers.199999.dense" : "op_199999";
    REQUIRE(c.op_name_configs.at(last));
    CHECK(c.op_name_configs.at(last)->nbits == 2);
    CHECK(seconds < 20);
  }
}

TEST_CASE("R4: a duplicate among 200k keys is still found, naming both lines", "[config][limits]") {
  std::string text = ManyKeys(false, 200'000) + "  op_7:\n    nbits: 4\n";
  OptimizationConfig c;
  const Status st = ParseOptimizationConfig(text, "big.yaml", &c);
  // op_7 is on line 6 + 3 * 7; the repeat follows the 200k entries (3 lines each) and 5 lines before.
  CHECK(st.message() == "big.yaml:600006: op_name_configs.op_7: duplicate key (first at line 27)");
}

TEST_CASE("R3: NameIndex numbers names, finds them, and reports the first of two equal ones",
          "[safetensors][limits]") {
  std::vector<std::string> names;
  for (int i = 0; i < 5000; ++i) names.push_back("w." + std::to_string(i));
  NameIndex index(3);  // grows many times
  for (size_t i = 0; i < names.size(); ++i) REQUIRE(index.Insert(names[i]) == NameIndex::kNone);
  CHECK(index.size() == names.size());
  for (size_t i = 0; i < names.size(); i += 7) CHECK(index.Find(names[i]) == i);
  CHECK(index.Find("w.5000") == NameIndex::kNone);
  CHECK(index.Find("") == NameIndex::kNone);
  const std::string again = "w.42";
  CHECK(index.Insert(again) == 42);
  CHECK(index.size() == names.size());
}
