// The measured sweep beyond one machine (issue 15 item 6; README "Sharding the measured sweep"):
// the sweep's tasks (spine_measured.h: MeasuredTasks, one model run per sample each) split into N
// slices by task number, t % N == K, so that each slice has every N-th task of the model order and
// the slices take about equal time (a task's cost is the model's forward passes, nearly the same
// for every weight and width). Slice K is measured and written as a costs file
// (alloc/costs_file.h); the N files merge into the errors one run measures, bit for bit.
//
// Every slice sweeps all the weights (the tables, which say what each task substitutes, and the
// candidates' digest): that is a fraction 1 / (tasks x samples) of the slice's model runs.
#pragma once

#include <string>
#include <vector>

#include "compress/output_meter.h"
#include "compress/spine.h"
#include "compress/spine_measured.h"
#include "palettize/compress.h"
#include "palettize/status.h"

namespace palettize {

// The rules of shard, costs_out and costs (CompressOptions), before any work: a valid K/N; shard
// with costs_out and calibration, not with costs, an output, a report, a config or plot to emit,
// or a dry run; costs_out only with shard. One-line InvalidArgument naming the options.
Status ValidateCostsOptions(const CompressOptions& o, const std::string& output);

// The digest of the swept candidates (util/digest.h): per weight its const name, and per
// candidate its nbits, bytes and the tables, scales and offsets that decode it.
std::string CandidatesDigest(const std::vector<MeasuredWeight>& weights);

// After MeasureCandidates of slice settings.shard: that slice's costs, staged beside
// settings.costs_out and renamed into place.
Status WriteCostsSlice(const std::vector<MeasuredWeight>& weights, const SpineSettings& settings,
                       const OutputMeter& meter);

// Reads settings.costs and sets every weight's errors from them. Each file must be of
// settings.model_digest (`input` names the model in errors), of these candidates, of the meter's
// samples (without a meter: of the first file's), and of one count N, and the files must have
// each slice of N once. `samples` and `outputs` get the files' counts. One-line InvalidArgument
// naming the file and the field that differs.
Status MergeCosts(std::vector<MeasuredWeight>& weights, const SpineSettings& settings,
                  const OutputMeter* meter, const std::string& input, size_t* samples, size_t* outputs);

}  // namespace palettize
