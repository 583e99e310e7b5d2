// How the library's messages name the caller's options. The library knows no CLI flag: by default
// a message names the option's field ("X: already exists (use overwrite to replace it)"); an app
// installs the names its users type once, before its first library call (apps/palettize installs
// its flags: "(use --force to replace it)").
#pragma once

#include <string>

namespace palettize {

struct OptionNames {
  std::string overwrite = "overwrite";      // CompressOptions, DecompressOptions::overwrite
  std::string min_target = "min_target";    // CompressOptions::min_target
  std::string packed = "packed";            // CheckpointOptions::packed
  std::string sensitivity = "sensitivity";  // CompressOptions::sensitivity_file: "the sensitivity file"
  std::string config = "config";            // CompressOptions::config_file: "the config file"
  std::string output_dir = "out_dir";       // PlanBatch's out_dir
  // Bit allocation's objectives (palettize/allocation.h: AllocationObjective).
  std::string target_bpw = "target_bpw";
  std::string target_size = "target_size";
  std::string min_snr = "min_snr";
  std::string emit_config = "emit_config_path";     // CompressOptions::emit_config_path
  std::string plot = "plot_path";                   // CompressOptions::plot_path
  std::string nbits = "nbits";                      // ConfigOverrides::nbits
  std::string relative_cost = "relative_cost";      // CompressOptions::relative_cost
  std::string calibration = "calibration";          // CompressOptions::calibration
  std::string min_output_psnr = "min_output_psnr";  // AllocationObjective::kMinOutputPsnr
  std::string tables = "tables_file";               // CompressOptions::tables_file
  std::string shard = "shard";                      // CompressOptions::shard
  std::string costs_out = "costs_out";              // CompressOptions::costs_out
  std::string costs = "costs";                      // CompressOptions::costs
};

// Replaces the names messages use. Not synchronised: call it before any other library call (or
// with none in flight).
void SetOptionNames(const OptionNames& names);

// The names in use: the defaults above until SetOptionNames.
const OptionNames& GetOptionNames();

}  // namespace palettize
