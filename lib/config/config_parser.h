// The YAML reader of both config schemas: coremltools' OptimizationConfig (config.cc) and
// coremltools.optimize.torch's palettizer configs (torch_schema.cc), with their key lists.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/yaml_values.h"
#include "palettize/config.h"
#include "palettize/status.h"

namespace palettize {

constexpr const char* kTopKeys = "config_type, global_config, op_type_configs, op_name_configs";
constexpr const char* kConfigKeys =
    "mode, nbits, granularity, group_size, channel_axis, cluster_dim, enable_per_channel_scale, "
    "num_kmeans_workers, weight_threshold, lut_dtype";
constexpr const char* kConfigType = "OpPalettizerConfig";
// coremltools.optimize.torch's PostTrainingPalettizerConfig / SKMPalettizerConfig, for checkpoints.
constexpr const char* kTorchTopKeys = "global_config, module_type_configs, module_name_configs";
constexpr const char* kTorchConfigKeys =
    "n_bits (or nbits), granularity, group_size, channel_axis, cluster_dim, enable_per_channel_scale, "
    "lut_dtype, weight_threshold, mode";
constexpr const char* kTorchModuleTypes = "Linear, Conv1d, Conv2d, Embedding";
constexpr int kTorchDefaultNbits = 4;  // ModulePostTrainingPalettizerConfig's n_bits default

class Parser {
 public:
  Parser(const std::string& file, bool torch) : file_(file), torch_(torch) {}

  Status Error(int line, const std::string& path, const std::string& problem) const;

  Status ParseTop(const Node& root, OptimizationConfig* out);

 private:
  // One top-level key of the Torch schema; module_type_configs and module_name_configs land in
  // op_type_configs and op_name_configs.
  Status ParseTorchTop(const Node& key, const Node& value, OptimizationConfig* out);

  // The Torch schema's rules beyond the shared ones, as coremltools' validators state them.
  Status CheckTorchConfig(const std::vector<std::pair<Node, Node>>& pairs, int owner_line,
                          const std::string& path, bool has_group_size, const PalettizeConfig& c) const;

  // yaml-cpp keeps every pair of a mapping (lookups see the first); PyYAML keeps the last.
  // Rather than pick one, a repeated key is an error.
  Status CheckKeys(const Node& map, const std::string& path) const;

  static std::string Join(const std::string& path, const std::string& key);

  // Python's getattr on the module is case-sensitive, so this is too.
  Status CheckConfigType(const Node& key, const Node& value, const std::string& path) const;

  Status ParseTable(const Node& key, const Node& value, const std::string& path,
                    std::map<std::string, std::optional<PalettizeConfig>>* out);

  Status ParseOptional(const Node& key, const Node& value, const std::string& path,
                       std::optional<PalettizeConfig>* out);

  Status ParseConfig(const Node& map, int owner_line, const std::string& path, PalettizeConfig* c);

  std::string file_;
  bool torch_ = false;  // coremltools.optimize.torch's schema (checkpoints), else OptimizationConfig's
};

// Reads `text` (file `file`) with the Torch schema when `torch`, else with coremltools'.
Status ParseWithSchema(const std::string& text, const std::string& file, bool torch, OptimizationConfig* out);

}  // namespace palettize
