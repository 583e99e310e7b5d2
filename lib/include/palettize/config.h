// Palettization configs: the same schema users write for coremltools'
// OptimizationConfig / OpPalettizerConfig, read from YAML (docs/format.md section 5).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "palettize/status.h"

namespace palettize {

enum class PalettizeMode { kKMeans, kUniform, kUnique };
enum class Granularity { kPerTensor, kPerGroupedChannel };
// How LUT entries are stored: in the weight's own dtype (kFloat), or quantized to 8-bit integers
// with one scale per table (iOS18: constexpr_blockwise_shift_scale feeding the LUT).
enum class LutDType { kFloat, kInt8, kUInt8 };

// How an iOS18 output stores enable_per_channel_scale (README "Device caveats"): kWrapper, the LUT
// op wrapped by constexpr_blockwise_shift_scale (coremltools' form; the Neural Engine on macOS 26
// rejects it at load); kFolded, the scale folded into one table per position (a lone
// constexpr_lut_to_dense, the same decoded bits) whenever that is exact; kAuto, folded when exact
// and at most 1.5 x the wrapper's bytes, else the wrapper.
enum class PerChannelScaleForm { kAuto, kWrapper, kFolded };

// One OpPalettizerConfig. Defaults are coremltools' defaults.
struct PalettizeConfig {
  PalettizeMode mode = PalettizeMode::kKMeans;
  int nbits = 0;  // 1, 2, 3, 4, 6 or 8; 0 (unset) is required for unique mode
  Granularity granularity = Granularity::kPerTensor;
  int64_t group_size = 32;                // channels per group, per_grouped_channel only
  std::optional<int64_t> channel_axis;    // unset: chosen from the consuming op
  int64_t cluster_dim = 1;                // > 1: vector palettization (iOS18)
  bool enable_per_channel_scale = false;  // iOS18
  LutDType lut_dtype = LutDType::kFloat;  // int8/uint8 tables are iOS18
  int64_t num_kmeans_workers = 1;         // accepted for compatibility; palettize uses all cores
  int64_t weight_threshold = 2048;        // palettize only weights with more elements than this
};

// An OptimizationConfig. std::nullopt means "skip" (null in YAML).
struct OptimizationConfig {
  std::optional<PalettizeConfig> global_config;  // no global_config key: skip what no key names
  std::map<std::string, std::optional<PalettizeConfig>> op_type_configs;
  std::map<std::string, std::optional<PalettizeConfig>> op_name_configs;
};

// Parses YAML `text` in coremltools' schema:
//   config_type: OpPalettizerConfig        # optional; if present must be this
//   global_config: {mode: kmeans, nbits: 6, ...}  # or null
//   op_type_configs: {linear: {...}, conv: null}
//   op_name_configs: {conv1: null}
// Field names as OpPalettizerConfig's (mode, nbits, granularity, group_size, channel_axis,
// cluster_dim, enable_per_channel_scale, num_kmeans_workers, weight_threshold) plus lut_dtype
// (int8|uint8). mode and granularity are case-insensitive. Unknown keys, wrong types and
// impossible values (nbits 5, nbits with unique, no nbits with kmeans/uniform, group_size < 1,
// cluster_dim < 1, uniform with cluster_dim > 1, negative or null weight_threshold, duplicate
// keys, num_kmeans_workers < 1) are errors of the form
// "FILE:LINE: KEY.PATH: problem", e.g. "c.yaml:4: op_type_configs.linear.nbits: 5 is not one of
// 1, 2, 3, 4, 6, 8".
Status ParseOptimizationConfig(const std::string& text, const std::string& file, OptimizationConfig* out);

// Parses YAML `text` in coremltools.optimize.torch's schema (PostTrainingPalettizerConfig,
// SKMPalettizerConfig), for safetensors checkpoints (docs/format.md section 9):
//   global_config: {n_bits: 4, ...}                    # or null
//   module_type_configs: {Linear: {...}, Embedding: null}  # into out->op_type_configs
//   module_name_configs: {encoder.layer.0: {...}}       # into out->op_name_configs
// Config keys: n_bits (nbits accepted too; default 4 as coremltools.optimize.torch), granularity,
// group_size (required with per_grouped_channel, refused with per_tensor), channel_axis (0, 1 or
// null), cluster_dim (null = 1; > 1 not with enable_per_channel_scale), enable_per_channel_scale,
// lut_dtype, weight_threshold (default 2048), and mode (our extension, default kmeans). Module
// types are Linear, Conv1d, Conv2d, Embedding ("torch.nn.Linear" and "nn.Linear" too).
// calibration_nsamples and unknown keys are errors, worded as ParseOptimizationConfig's. With no
// global_config (or a null one) and no other entry, global_config is the default config, as in
// coremltools.
Status ParseTorchPalettizerConfig(const std::string& text, const std::string& file, OptimizationConfig* out);

// Validates one config's values (the rules above); the YAML parser applies the same rules with
// the same wording. The error is "WHERE: FIELD: problem", e.g. "options: group_size: 0 is not an
// integer >= 1", or "WHERE: problem" when `where` already ends with the field ("--nbits: 5 is not
// one of 1, 2, 3, 4, 6, 8", "global_config.nbits: ...") or the problem is not about one field
// ("global_config: nbits is required for kmeans mode (one of 1, 2, 3, 4, 6, 8)").
Status ValidatePalettizeConfig(const PalettizeConfig& config, const std::string& where);

// A config file is read whole: one larger than 16 MiB is refused from its size, unread.
inline constexpr uint64_t kMaxConfigBytes = uint64_t(16) << 20;

// Reads the config file `path` and parses it with ParseTorchPalettizerConfig when `torch_schema`
// (a checkpoint's config), else ParseOptimizationConfig. Only a regular file is read: a folder,
// FIFO or device is an IOError naming it ("c.yaml: is a folder, expected a file"), not opened; a
// file over kMaxConfigBytes is InvalidArgument, as any bad config.
Status ReadConfigFile(const std::string& path, bool torch_schema, OptimizationConfig* out);

// Short human form of how a weight is encoded: "kmeans 6-bit per_tensor", "unique per_tensor",
// "kmeans 4-bit per_grouped_channel(group_size=16, axis=0) cluster_dim=2 per_channel_scale
// lut=int8". weight_threshold and num_kmeans_workers are left out: they choose which weights are
// palettized and how fast, not how.
std::string DescribeConfig(const PalettizeConfig& config);

// The names the YAML schema uses: "kmeans", "uniform", "unique".
const char* ModeName(PalettizeMode mode);

}  // namespace palettize
