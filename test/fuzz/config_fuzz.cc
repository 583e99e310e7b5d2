// Fuzzes the YAML config parser (lib/config, ParseOptimizationConfig): the input is the YAML
// text. Every config the parser accepts must pass ValidatePalettizeConfig (the parser promises
// the same rules) and have a description.
#include <string>

#include "fuzz_targets.h"
#include "palettize/config.h"

namespace palettize {

namespace {

void CheckAccepted(const std::optional<PalettizeConfig>& c) {
  if (!c) return;
  if (!ValidatePalettizeConfig(*c, "fuzz").ok()) __builtin_trap();
  if (DescribeConfig(*c).empty()) __builtin_trap();
}

}  // namespace

int FuzzConfig(const uint8_t* data, size_t size) {
  OptimizationConfig config;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!ParseOptimizationConfig(text, "fuzz.yaml", &config).ok()) return 0;
  CheckAccepted(config.global_config);
  for (const auto& [type, c] : config.op_type_configs) CheckAccepted(c);
  for (const auto& [name, c] : config.op_name_configs) CheckAccepted(c);
  return 0;
}

}  // namespace palettize
