// Option names: library messages name the caller's options by the installed names (an app's
// flags), by the option structs' field names when none are installed, and never by a CLI flag.
#include <catch2/catch.hpp>

#include <fstream>

#include "palettize/checkpoint.h"
#include "palettize/compress.h"
#include "palettize/option_names.h"
#include "test_util.h"
#include "util/path_rules.h"

using namespace palettize;

namespace {

// Installs `names` for one test and puts the previous ones back, so other tests see the defaults.
class ScopedNames {
 public:
  explicit ScopedNames(const OptionNames& names) : saved_(GetOptionNames()) { SetOptionNames(names); }
  ~ScopedNames() { SetOptionNames(saved_); }

 private:
  OptionNames saved_;
};

// The names apps/palettize installs: overwrite, min_target, packed, sensitivity, config, out_dir.
const OptionNames kFlags{
    "--force", "--minimum-deployment-target", "--packed", "--sensitivity", "--config", "--output-dir"};

// Every message below, as the library words it under `names`.
std::vector<std::string> Messages(const std::string& dir) {
  std::ofstream(dir + "/in.safetensors") << "x";
  std::ofstream(dir + "/out.safetensors") << "x";
  std::vector<std::string> out;
  CompressOptions o;
  auto paths = [&](const std::string& output) {
    return CheckRunPaths(CompressRunPaths(dir + "/in.safetensors", {output, OutputKind::kFile}, o)).message();
  };
  out.push_back(paths(dir + "/out.safetensors"));
  o.sensitivity_file = dir + "/s.safetensors";
  out.push_back(paths(o.sensitivity_file));
  o.sensitivity_file.clear();
  o.config_file = dir + "/c.safetensors";
  out.push_back(paths(o.config_file));
  CheckpointOptions ck;
  ck.compress.min_target = DeploymentTarget::kIOS18;
  CheckpointReport report;
  out.push_back(CompressCheckpoint(dir + "/in.safetensors", dir + "/new.safetensors", ck, &report).message());
  OptimizationConfig config;
  out.push_back(ParseTorchPalettizerConfig("calibration_nsamples: 16\n", "t.yaml", &config).message());
  // A forced target below what a config needs: only the end of the message is about the option.
  CompressOptions grouped;
  grouped.config.global_config = PalettizeConfig();
  grouped.config.global_config->nbits = 4;
  grouped.config.global_config->granularity = Granularity::kPerGroupedChannel;
  grouped.min_target = DeploymentTarget::kIOS16;
  CompressReport compressed;
  const std::string m = Compress(SharedModel("mnist"), dir + "/m.mlpackage", grouped, &compressed).message();
  out.push_back(m.substr(m.find(", but ") + 1));
  return out;
}

}  // namespace

TEST_CASE("library messages name options by their fields unless an app installs its names",
          "[option_names]") {
  TempDir dir;
  const std::string d = dir.path();
  const std::vector<std::string> plain = Messages(d);
  CHECK(plain == std::vector<std::string>{
                     d + "/out.safetensors: already exists (use overwrite to replace it)",
                     d + "/s.safetensors: the output is the sensitivity file; write to another path",
                     d + "/c.safetensors: the output is the config file; write to another path",
                     "min_target: a checkpoint has no deployment target",
                     "t.yaml:1: calibration_nsamples: not supported (palettize does not run the model; pass "
                     "sensitivities computed beforehand with sensitivity)",
                     " but min_target is iOS16"});
  for (const std::string& m : plain) CHECK(m.find("--") == std::string::npos);

  {
    ScopedNames flags(kFlags);
    CHECK(Messages(d) ==
          std::vector<std::string>{
              d + "/out.safetensors: already exists (use --force to replace it)",
              d + "/s.safetensors: the output is the --sensitivity file; write to another path",
              d + "/c.safetensors: the output is the --config file; write to another path",
              "--minimum-deployment-target: a checkpoint has no deployment target",
              "t.yaml:1: calibration_nsamples: not supported (palettize does not run the model; "
              "pass sensitivities computed beforehand with --sensitivity)",
              " but --minimum-deployment-target is iOS16"});
  }
  CHECK(Messages(d) == plain);
}
