// fuzz_replay DIR: runs every file in DIR/<harness>/ through that harness's function, as the
// libFuzzer target would, in the ordinary build (test/fuzz/regressions/, a CTest). A crashing
// input that the fuzzers found stays fixed: it crashes this test if the bug comes back.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_targets.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_replay DIR (with a folder per harness)\n");
    return 1;
  }
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(argv[1], ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory()) continue;
    if (std::none_of(std::begin(palettize::kFuzzTargets), std::end(palettize::kFuzzTargets),
                     [&](const palettize::FuzzTarget& t) { return name == t.name; })) {
      std::fprintf(stderr, "fuzz_replay: %s: no harness named '%s'\n", entry.path().c_str(), name.c_str());
      return 1;
    }
  }
  if (ec) {
    std::fprintf(stderr, "fuzz_replay: %s: %s\n", argv[1], ec.message().c_str());
    return 1;
  }
  size_t replayed = 0;
  for (const palettize::FuzzTarget& target : palettize::kFuzzTargets) {
    const fs::path dir = fs::path(argv[1]) / target.name;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> inputs;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.is_regular_file()) inputs.push_back(entry.path());
    std::sort(inputs.begin(), inputs.end());
    for (const fs::path& input : inputs) {
      std::ifstream in(input, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::fprintf(stderr, "%s %s\n", target.name, input.filename().c_str());
      target.fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  std::printf("replayed %zu inputs\n", replayed);
  return 0;
}
