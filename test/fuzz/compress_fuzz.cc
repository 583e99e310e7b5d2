// Fuzzes compress end to end: the input is one options byte, then a package archive
// (fuzz_package.h). The package is written to a scratch folder and compressed on one thread with
// weight_threshold 0 (so the small weights of small packages are palettized), with the config the
// options byte picks. Checked: the input files are unchanged, and an output that compress reports
// written is a package inspect reads.
//
//   options byte: bits 0-2 mode/nbits (kmeans 1, 2, 3, 4, 6, 8; uniform 4; unique)
//                 bit 3 per_grouped_channel (group_size 2)   bit 4 cluster_dim 2
//                 bit 5 per-channel scale                    bit 6 int8 LUT
//                 bit 7 --minimum-deployment-target iOS18
#include "fuzz_package.h"
#include "fuzz_targets.h"
#include "palettize/compress.h"
#include "util/file.h"

namespace palettize {

namespace {

CompressOptions OptionsFor(uint8_t b) {
  CompressOptions o;
  PalettizeConfig c;
  constexpr int kNbits[] = {1, 2, 3, 4, 6, 8};
  const int pick = b & 7;
  if (pick < 6) c.nbits = kNbits[pick];
  if (pick == 6) {
    c.mode = PalettizeMode::kUniform;
    c.nbits = 4;
  }
  if (pick == 7) c.mode = PalettizeMode::kUnique;
  if (b & 8) {
    c.granularity = Granularity::kPerGroupedChannel;
    c.group_size = 2;
  }
  if (b & 16) c.cluster_dim = 2;
  c.enable_per_channel_scale = (b & 32) != 0;
  if (b & 64) c.lut_dtype = LutDType::kInt8;
  c.weight_threshold = 0;
  o.config.global_config = c;
  if (b & 128) o.min_target = DeploymentTarget::kIOS18;
  o.threads = 1;
  return o;
}

}  // namespace

int FuzzCompress(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const ArchiveFiles files = ParseArchive(data + 1, size - 1);
  const std::string in = JoinPath(FuzzScratchDir(), "in.mlpackage");
  const std::string out = JoinPath(FuzzScratchDir(), "out.mlpackage");
  WriteArchive(files, in);
  RemoveTree(out);

  CompressReport report;
  const Status st = Compress(in, out, OptionsFor(data[0]), &report);
  if (!ArchiveUnchanged(files, in)) __builtin_trap();  // compress changed its input
  if (st.ok()) {
    ModelInfo info;
    if (!Inspect(out, InspectOptions(), &info).ok()) __builtin_trap();  // wrote a package it cannot read
    (void)CompressReportToJson(report);
    (void)CompressSummary(report);
  } else {
    // A clean failure leaves nothing at the output path, nor a temporary folder beside it.
    if (ScratchHas("out.mlpackage")) __builtin_trap();
  }
  RemoveTree(out);
  return 0;
}

}  // namespace palettize
