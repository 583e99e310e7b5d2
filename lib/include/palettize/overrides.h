// Config overrides: the settings a caller gives one by one (an app's options) laid over a config's
// global_config, and the parsing of their names. A caller with no config file and no overrides
// gets DefaultOptimizationConfig().
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "palettize/compress.h"
#include "palettize/config.h"
#include "palettize/status.h"

namespace palettize {

// Each field set replaces that field of global_config; unset fields keep the config's value.
struct ConfigOverrides {
  std::optional<PalettizeMode> mode;
  std::optional<int> nbits;
  std::optional<Granularity> granularity;
  std::optional<int64_t> group_size;
  std::optional<int64_t> channel_axis;
  std::optional<int64_t> cluster_dim;
  std::optional<bool> enable_per_channel_scale;
  std::optional<LutDType> lut_dtype;
  std::optional<int64_t> weight_threshold;

  bool empty() const;
};

// Without a config file: kmeans 6-bit per_tensor for every weight over the weight threshold
// (coremltools has no default nbits; 6 keeps most models' quality at about 2.7x smaller).
OptimizationConfig DefaultOptimizationConfig();

// Lays `overrides` over config->global_config. With none set the config is unchanged (a missing or
// null global_config stays: the file asked to skip what no other key names). Otherwise a missing
// global_config starts as the default's; mode unique without nbits clears nbits (unique takes
// none), another mode over a cleared nbits gets 6. The result is validated as
// ValidatePalettizeConfig(global_config, "options"): "options: group_size: 0 is not an integer >= 1".
Status ApplyOverrides(const ConfigOverrides& overrides, OptimizationConfig* config);

// The config a run uses: `config_file` read by ReadConfigFile (`torch_schema` for a checkpoint),
// or the default when it is "", with `overrides` applied.
Status ResolveConfig(const std::string& config_file, bool torch_schema, const ConfigOverrides& overrides,
                     OptimizationConfig* out);

// Names as the YAML schema spells them, in any case. An unknown name is InvalidArgument naming it
// and the choices: "'median' is not one of kmeans, uniform, unique".
Status ParseMode(const std::string& text, PalettizeMode* out);       // kmeans, uniform, unique
Status ParseGranularity(const std::string& text, Granularity* out);  // per_tensor, per_grouped_channel
Status ParseLutDType(const std::string& text, LutDType* out);        // int8, uint8
Status ParseDeploymentTarget(const std::string& text, DeploymentTarget* out);  // iOS16, iOS17, iOS18

// A size in bytes: a number (decimals allowed) and an optional binary unit, K, M, G or T
// (1024-based, as FormatBytes prints them), with or without a trailing "B" or "iB", in any case:
// "1500000", "512K", "1.5M", "2GiB". Not finite, not above zero or not a whole number of bytes
// once scaled is InvalidArgument: "'1.5' is not a size in bytes (a number with an optional K, M,
// G or T)".
Status ParseByteSize(const std::string& text, double* out);

}  // namespace palettize
