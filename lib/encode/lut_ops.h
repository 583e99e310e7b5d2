// Rewriting a const weight into its palettized form (../shared/coreml-format.md section 5):
//
// iOS16/17:  constexpr_lut_to_dense, everything as attributes:
//              indices uint8 [ceil(nbits*N/8)] (packed), lut dtype [2^nbits], shape uint32 [rank]
// iOS18:     constexpr_lut_to_dense(indices: uintN [shape / cluster_dim on the vector axis],
//                                   lut: [g_0..g_{K-1}, 2^nbits, cluster_dim], vector_axis?)
//            with an int8/uint8 LUT:  lut = constexpr_blockwise_shift_scale(data: int8 table,
//                                          scale: [g.., 1, 1] (, offset: uint8 [g.., 1, 1]))
//            with a per-channel scale: out = constexpr_blockwise_shift_scale(data: <lut op>,
//                                          scale: weight shape with 1 on the channel axis)
//            or (ScaleForm, encode/scale_fold.h) the scale folded into one float table per
//            position: a lone constexpr_lut_to_dense, which the Neural Engine loads on macOS 26
// The last op takes the const's output name and type, so its consumers need no change.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "encode/scale_fold.h"
#include "mil/weights.h"
#include "package/package.h"
#include "palettizer/weight_palettizer.h"

namespace palettize {

enum class LutForm { kIOS16, kIOS18 };

// The bytes RewriteAsLut will store for `p`: packed indices, tables, and scales. Needs only p's
// shapes, widths and tables, not its indices.
uint64_t LutEncodedBytes(const PalettizedWeight& p, int mil_type, LutDType lut_dtype, LutForm form);

// Receives a new blob (destined for blob.file_name) and returns the handle values refer to it by
// (fileName kPendingBlobFile, offset = handle): PackageWriter::AppendNew, or a vector's index.
// How a per-channel scale was stored (iOS18): the wrapper or the folded form, both forms' bytes,
// and why the wrapper was kept ("" when folded).
struct ScaleFormOutcome {
  bool folded = false;
  uint64_t wrapper_bytes = 0;
  uint64_t folded_bytes = 0;
  std::string note;
};

// Decides the form for `p` (with a per-channel scale, iOS18): kWrapper keeps the wrapper; kFolded
// folds whenever the fold is exact; kAuto folds when it is exact and folded bytes <= 1.5 x the
// wrapper's. Neither folds when the fold is no smaller than the dense weight. Fills `fold` when
// it folds.
ScaleFormOutcome ChooseScaleForm(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type,
                                 LutDType lut_dtype, PerChannelScaleForm form, FoldedLut* fold);

// The bytes RewriteAsLut will store for `p` under `scale_form`: LutEncodedBytes, or the folded
// form's when the size rule of ChooseScaleForm picks it (the fold is assumed exact: it is unless
// FoldChannelScale finds otherwise, and then the wrapper is stored).
uint64_t LutEncodedBytes(const PalettizedWeight& p, const std::vector<uint64_t>& dims, int mil_type,
                         LutDType lut_dtype, LutForm form, PerChannelScaleForm scale_form);

using BlobSink = std::function<Status(PendingBlob&& blob, uint64_t* handle)>;

// Replaces `w.op` in `w.block` by the ops encoding `p`. New tensor values of 10 or more elements
// go to `sink` as blobs for `weight_file`; `used_names` holds every name in the function and
// receives the new ones. `*bytes` is the size of the new values (= LutEncodedBytes).
Status RewriteAsLut(const ConstWeight& w, const PalettizedWeight& p, LutDType lut_dtype, LutForm form,
                    const std::string& weight_file, std::set<std::string>* used_names, const BlobSink& sink,
                    uint64_t* bytes, PerChannelScaleForm scale_form = PerChannelScaleForm::kWrapper,
                    ScaleFormOutcome* scale_outcome = nullptr);

}  // namespace palettize
