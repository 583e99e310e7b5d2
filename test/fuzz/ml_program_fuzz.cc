// Fuzzes the ML Program walker and the inspect path: the input is a package archive
// (fuzz_package.h; a standard Manifest.json is added when the archive has none). The root model
// is parsed and walked in memory (FindWeights, then planned with the default config), then the
// package is written to a scratch folder and inspected as `palettize inspect` would.

#include "Model.pb.h"
#include "compress/mil_plan.h"
#include "fuzz_package.h"
#include "fuzz_targets.h"
#include "mil/weights.h"
#include "package/package.h"
#include "palettize/inspect.h"
#include "util/file.h"

namespace palettize {

namespace {

constexpr char kModelPath[] = "Data/com.apple.CoreML/model.mlmodel";

void WalkInMemory(const std::string& bytes) {
  spec::Model model;
  if (!model.ParseFromString(bytes)) return;
  std::vector<ConstWeight> weights;
  if (!FindWeights(model, &weights).ok()) return;
  for (const ConstWeight& w : weights) (void)WhyNotPalettizable(MilPlanInput(w));
  OptimizationConfig config;
  config.global_config = PalettizeConfig();
  config.global_config->nbits = 6;
  std::vector<WeightPlan> plans;
  if (PlanMilWeights(weights, config, &plans).ok() && plans.size() != weights.size()) __builtin_trap();
}

}  // namespace

int FuzzMlProgram(const uint8_t* data, size_t size) {
  ArchiveFiles files = ParseArchive(data, size);
  AddDefaultManifest(&files);
  for (const auto& [path, bytes] : files)
    if (path == kModelPath) WalkInMemory(bytes);

  const std::string dir = JoinPath(FuzzScratchDir(), "in.mlpackage");
  WriteArchive(files, dir);
  ModelInfo info;
  if (!Inspect(dir, InspectOptions(), &info).ok()) return 0;
  if (InspectToJson(info).empty() || InspectToTable(info).empty()) __builtin_trap();
  return 0;
}

}  // namespace palettize
