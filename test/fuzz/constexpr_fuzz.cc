// Fuzzes the evaluation of constexpr chains (lib/decompress/constexpr_eval) through decompress
// and compare: the input is a package archive (fuzz_package.h; a standard Manifest.json is added
// when the archive has none), seeded with compressed packages, palettize's and coremltools'
// (constexpr_lut_to_dense iOS16 and iOS18, constexpr_blockwise_shift_scale on either side).
// The package is decompressed; the decompressed package (or, when decompress refuses, the
// package itself) is compared against it, and the comparison rendered as JSON and as a table.
// Checked: the input files are unchanged; a decompress that succeeds wrote a package inspect
// reads, and that compare can measure against the chains it came from (decompress and compare
// evaluate them alike; which weights match is not checked, since a fuzzed program may give two
// ops one name); one that fails left nothing at the output path.
#include "fuzz_package.h"
#include "fuzz_targets.h"
#include "palettize/compare.h"
#include "palettize/decompress.h"
#include "palettize/inspect.h"
#include "util/file.h"

namespace palettize {

int FuzzConstexpr(const uint8_t* data, size_t size) {
  ArchiveFiles files = ParseArchive(data, size);
  AddDefaultManifest(&files);
  const std::string in = JoinPath(FuzzScratchDir(), "in.mlpackage");
  const std::string out = JoinPath(FuzzScratchDir(), "out.mlpackage");
  WriteArchive(files, in);
  RemoveTree(out);

  DecompressReport report;
  const Status st = Decompress(in, out, DecompressOptions(), &report);
  if (st.ok()) {
    ModelInfo info;
    if (!Inspect(out, InspectOptions(), &info).ok()) __builtin_trap();  // wrote a package it cannot read
  } else if (ScratchHas("out.mlpackage")) {
    __builtin_trap();  // a failure left an output, or a temporary folder beside it
  }
  CompareReport compared;
  const Status cmp = Compare(st.ok() ? out : in, in, &compared);
  if (st.ok() && !cmp.ok()) __builtin_trap();
  if (cmp.ok()) {
    (void)CompareToJson(compared);
    (void)CompareToTable(compared);
    (void)CheckComparable(compared);
    (void)CheckMinSnr(compared, 30);
  }
  if (!ArchiveUnchanged(files, in)) __builtin_trap();  // decompress or compare changed the input
  RemoveTree(out);
  return 0;
}

}  // namespace palettize
