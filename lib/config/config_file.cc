// Reading a config file for ParseOptimizationConfig / ParseTorchPalettizerConfig.
#include "palettize/config.h"
#include "util/file.h"

namespace palettize {

Status ReadConfigFile(const std::string& path, bool torch_schema, OptimizationConfig* out) {
  std::string text;
  Status st = ReadFileToString(path, &text, kMaxConfigBytes, "a config");
  // Too large is a bad config (exit 1), as its other faults; unreadable stays an IOError.
  if (st.code() == Status::Code::kInvalidInput) return Status::InvalidArgument(st.message());
  PALETTIZE_RETURN_IF_ERROR(st);
  return torch_schema ? ParseTorchPalettizerConfig(text, path, out)
                      : ParseOptimizationConfig(text, path, out);
}

}  // namespace palettize
