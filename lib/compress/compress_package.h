// compress for one package with an optional OutputMeter (allocation by measured output error,
// compress/output_meter.h), for the callers above the evaluator that make one (batch/'s
// RunCompress, through calib/). Compress (palettize/compress.h) is this with none.
#pragma once

#include <string>

#include "compress/output_meter.h"
#include "palettize/compress.h"
#include "palettize/status.h"

namespace palettize {

// As Compress; with options.calibration, `meter` (which must then be set) measures each
// candidate's output error and the written output.
Status CompressPackage(const std::string& input, const std::string& output, const CompressOptions& options,
                       OutputMeter* meter, CompressReport* report);

}  // namespace palettize
