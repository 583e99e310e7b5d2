// Consts that several functions of a multifunction model share (one blob, one resolved config):
// the first is palettized once, and every copy is rewritten to point at the first's new blobs, so
// they stay shared. The copies are reported with `shared_with`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "encode/lut_ops.h"
#include "mil/weights.h"
#include "package/package.h"
#include "palettize/compress.h"
#include "palettizer/weight_palettizer.h"
#include "plan/plan.h"

namespace palettize {

class SharedConsts {
 public:
  // Sorts the weights to palettize into the first of each blob, into `firsts` (model order), and
  // the copies. Consts whose value is not in a blob are never shared.
  Status Group(const Package& package, const std::vector<ConstWeight>& weights,
               const std::vector<WeightPlan>& plans, std::vector<size_t>* firsts);

  // Each copy's sensitivity is its first's.
  void CopySensitivity(std::vector<WeightReport>* reports) const;

  // The sink first `i` writes its new blobs through: `sink`, recording the blobs when `i` has
  // copies. Then Keep(i, ...) its result for them.
  BlobSink SinkFor(size_t i, const BlobSink& sink);
  void Keep(size_t i, PalettizedWeight&& result);

  // Rewrites weight `i` as `p` through `sink` (RewriteAsLut), setting *bytes.
  using Rewrite =
      std::function<Status(size_t i, const PalettizedWeight& p, const BlobSink& sink, uint64_t* bytes)>;
  // Rewrites every copy, in model order, as its first's result, pointing at the first's blobs;
  // a copy of a first that was not palettized is not either.
  Status RewriteCopies(const std::vector<ConstWeight>& weights, const Rewrite& rewrite,
                       std::vector<WeightReport>* reports) const;

 private:
  // The first of a shared const: its result and the handles of the blobs it wrote, in order.
  struct First {
    PalettizedWeight result;
    std::vector<std::pair<uint64_t, size_t>> blobs;  // handle, bytes
  };
  std::vector<size_t> copies_;   // model order
  std::vector<size_t> primary_;  // per weight: its first (itself when not a copy)
  std::map<size_t, First> firsts_;
};

}  // namespace palettize
