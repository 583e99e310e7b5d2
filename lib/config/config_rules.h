// The rules a PalettizeConfig must keep, and their wording, shared by both YAML schemas and
// ValidatePalettizeConfig (config_rules.cc, which also describes configs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "palettize/config.h"

namespace palettize {

bool ValidNbits(int64_t n);

// Shared wording, so that a YAML file and a CLI flag with the same bad value read the same.
std::string NotNbits(const std::string& shown);
std::string NotIntAtLeast(const std::string& shown, int min);

// The first rule a config breaks. `field` is the key the problem is about, or empty when it is
// about the config as a whole (a missing nbits has no node to point at).
struct Violation {
  std::string field;
  std::string problem;
};

// Order follows coremltools' validators, so the first complaint matches theirs.
std::optional<Violation> FindViolation(const PalettizeConfig& c);

}  // namespace palettize
