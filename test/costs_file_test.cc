// The costs file of a sharded measured sweep (alloc/costs_file.h): K/N parsing, a round trip that
// keeps every error bit for bit (NaN and infinities included), and the one-line refusals of a file
// that is not one, of another version, or whose entries do not make up its slice.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>

#include "alloc/costs_file.h"
#include "test_util.h"
#include "util/digest.h"
#include "util/file.h"

using namespace palettize;

namespace {

uint64_t Bits(double x) {
  uint64_t b = 0;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

// Slice 1 of 3 of 7 tasks (tasks 1 and 4), 2 samples x 1 output.
CostsFile Slice() {
  CostsFile f;
  f.model = "fnv1a64:0000000000000001";
  f.candidates = "fnv1a64:0000000000000002";
  f.samples = "fnv1a64:0000000000000003";
  f.index = 1;
  f.count = 3;
  f.tasks = 7;
  f.sample_count = 2;
  f.output_count = 1;
  f.entries.push_back({1, "w1", 2, {0.1 + 0.2, std::numeric_limits<double>::denorm_min()}});
  f.entries.push_back({4, "w2", 8, {std::nan(""), std::numeric_limits<double>::infinity()}});
  return f;
}

std::string Written(const TempDir& tmp, const std::string& text) {
  const std::string path = tmp.path() + "/c.json";
  REQUIRE(WriteStringToFile(path, text).ok());
  return path;
}

}  // namespace

TEST_CASE("ParseShard takes K/N with 0 <= K < N and names the option otherwise") {
  uint64_t k = 9, n = 9;
  REQUIRE(ParseShard("0/3", "--shard", &k, &n).ok());
  CHECK((k == 0 && n == 3));
  REQUIRE(ParseShard("2/3", "--shard", &k, &n).ok());
  CHECK((k == 2 && n == 3));
  for (const char* bad : {"3/3", "4/3", "0/0", "x", "1/", "/3", "-1/3", "1/3/4", "1 /3", "+1/3"}) {
    const Status st = ParseShard(bad, "--shard", &k, &n);
    CHECK(st.message() == std::string("--shard: '") + bad + "' is not K/N (slice K of N, 0 <= K < N)");
  }
}

TEST_CASE("A costs file reads back bit for bit") {
  TempDir tmp;
  const CostsFile f = Slice();
  const std::string path = Written(tmp, CostsFileToJson(f));
  CostsFile g;
  REQUIRE(ReadCostsFile(path, &g).ok());
  CHECK((g.model == f.model && g.candidates == f.candidates && g.samples == f.samples));
  CHECK((g.index == 1 && g.count == 3 && g.tasks == 7 && g.sample_count == 2 && g.output_count == 1));
  REQUIRE(g.entries.size() == 2);
  for (size_t k = 0; k < 2; ++k) {
    CHECK(g.entries[k].task == f.entries[k].task);
    CHECK(g.entries[k].weight == f.entries[k].weight);
    CHECK(g.entries[k].nbits == f.entries[k].nbits);
    REQUIRE(g.entries[k].errors.size() == 2);
    for (size_t e = 0; e < 2; ++e)
      if (!std::isnan(f.entries[k].errors[e]))
        CHECK(Bits(g.entries[k].errors[e]) == Bits(f.entries[k].errors[e]));
  }
  CHECK(std::isnan(g.entries[1].errors[0]));
}

TEST_CASE("A costs file that is not one, or not whole, is refused in one line naming the field") {
  TempDir tmp;
  CostsFile g;
  std::string text = CostsFileToJson(Slice());
  auto refused = [&](const std::string& json) {
    const std::string path = Written(tmp, json);
    const Status st = ReadCostsFile(path, &g);
    REQUIRE(!st.ok());
    return st.message().substr(path.size() + 2);
  };
  CHECK(refused("[1, 2") == "not a costs file (not JSON)");
  CHECK(refused("{\"format\": \"other\"}") == "not a costs file (no \"format\": \"palettize-costs\")");
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    const size_t at = t.find(from);
    REQUIRE(at != std::string::npos);
    return t.replace(at, from.size(), to);
  };
  CHECK(refused(replaced("\"version\": 1", "\"version\": 2")) ==
        "version: 2 is not supported (this palettize reads version 1)");
  CHECK(refused(replaced("\"model\": \"fnv1a64:0000000000000001\"", "\"model\": 1")) ==
        "model: missing or not a string");
  CHECK(refused(replaced("\"task\":4", "\"task\":5")) == "costs[1].task: 5 is not a task of slice 1/3");
  CHECK(refused(replaced("\"task\":4", "\"task\":1")) == "costs[1].task: not after the previous entry's");
  CHECK(refused(replaced("\"tasks\": 7", "\"tasks\": 8")) == "costs: 2 entries; slice 1/3 of 8 tasks has 3");
  CHECK(refused(replaced("\"sample_count\": 2", "\"sample_count\": 3")) ==
        "costs[0].errors: missing or not an array of 3 errors");
  CHECK(refused(replaced("\"nan\"", "\"NaN!\"")) ==
        "costs[1].errors: an error is neither a number nor \"nan\", \"inf\" or \"-inf\"");
}

TEST_CASE("Digest is FNV-1a 64 over little-endian words, then the last bytes") {
  // FNV-1a 64 of "a" (one byte, no word) is af63dc4c8601ec8c, the published test vector.
  CHECK(Digest().Update("a", 1).Hex() == "fnv1a64:af63dc4c8601ec8c");
  CHECK(Digest().Update("", 0).Hex() == "fnv1a64:cbf29ce484222325");
  // Strings carry their size: a different split is a different digest.
  CHECK(Digest().Update(std::string("ab")).Update(std::string("c")).value() !=
        Digest().Update(std::string("a")).Update(std::string("bc")).value());
  const char eight[] = "abcdefgh";
  CHECK(Digest().Update(eight, 8).value() != Digest().Update(eight, 7).Update(eight + 7, 1).value());
}
