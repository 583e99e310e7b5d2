#include "compress/spine_measured.h"

#include <cmath>
#include <limits>
#include <memory>

#include "alloc/knapsack.h"
#include "alloc/lagrange_path.h"
#include "palettizer/sweep.h"
#include "util/ordered_pipeline.h"

namespace palettize {

namespace {

// Candidate j of `w` decoded: a copy of its sweep result completed with its indices and values,
// from the tables the sweep kept (FillIndices; no clustering for scalar tables).
Status Decode(const MeasuredWeight& w, size_t j, PalettizedWeight* p) {
  *p = w.sweep->results[j];
  std::vector<uint8_t> copy;
  const uint8_t* data = AlignedElements(*w.job, &copy);
  std::string reason;
  if (!FillIndices(data, *w.job->shape, WithNBits(*w.job->plan, p->nbits), true, p, &reason))
    return Status::InvalidInput("weight '" + *w.const_name + "' at " + std::to_string(p->nbits) +
                                " bits: " + reason);
  p->indices.clear();
  p->indices.shrink_to_fit();
  return Status::OK();
}

uint64_t Bytes(const std::vector<MeasuredWeight>& weights, const std::vector<int>& chosen) {
  uint64_t bytes = 0;
  for (size_t i = 0; i < weights.size(); ++i) bytes += weights[i].sweep->candidates[size_t(chosen[i])].bytes;
  return bytes;
}

}  // namespace

std::vector<MeasuredTask> MeasuredTasks(const std::vector<MeasuredWeight>& weights) {
  std::vector<MeasuredTask> tasks;
  for (size_t i = 0; i < weights.size(); ++i)
    for (size_t j = 0; j < weights[i].sweep->candidates.size(); ++j)
      if (weights[i].sweep->candidates[j].nbits != 0) tasks.push_back({i, j});
  return tasks;
}

Status MeasureCandidates(std::vector<MeasuredWeight>& weights, OutputMeter& meter, int threads,
                         uint64_t index, uint64_t count) {
  struct Task {
    size_t weight, candidate;
    Status status;
  };
  for (MeasuredWeight& w : weights)
    w.errors.assign(w.sweep->candidates.size(), std::vector<double>(meter.Pairs(), 0.0));
  std::vector<Task> tasks;
  const std::vector<MeasuredTask> all = MeasuredTasks(weights);
  for (size_t t = index; t < all.size(); t += size_t(count))
    tasks.push_back({all[t].weight, all[t].candidate, Status::OK()});
  // The largest weights first, so that no worker is left with one at the end.
  std::vector<size_t> order(tasks.size());
  for (size_t k = 0; k < tasks.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return weights[tasks[a].weight].job->shape->elements > weights[tasks[b].weight].job->shape->elements;
  });
  auto measure = [&](size_t k) {
    Task& t = tasks[k];
    const MeasuredWeight& w = weights[t.weight];
    PalettizedWeight p;
    t.status = Decode(w, t.candidate, &p);
    if (t.status.ok())
      t.status =
          meter.Measure({{w.const_name, w.job->shape, &p.decoded}}, &weights[t.weight].errors[t.candidate]);
    return k;
  };
  RunOrdered(order, threads, measure, [](size_t) {});
  for (const Task& t : tasks) PALETTIZE_RETURN_IF_ERROR(t.status);
  return Status::OK();
}

void SetMeasuredCosts(std::vector<MeasuredWeight>& weights) {
  for (MeasuredWeight& w : weights)
    for (size_t j = 0; j < w.errors.size(); ++j) {
      double sum = 0;
      for (double e : w.errors[j]) sum += e;
      // NaN (an output that became NaN) costs the most any finite cost can: never chosen over a
      // finite one.
      w.sweep->candidates[j].cost = std::isfinite(sum) ? sum : std::numeric_limits<double>::max() / 1e6;
    }
}

std::vector<double> PredictedErrors(const std::vector<MeasuredWeight>& weights,
                                    const std::vector<int>& chosen) {
  std::vector<double> sum(weights.empty()             ? 0
                          : weights[0].errors.empty() ? 0
                                                      : weights[0].errors[0].size(),
                          0.0);
  for (size_t i = 0; i < weights.size(); ++i) {
    const std::vector<double>& e = weights[i].errors[size_t(chosen[i])];
    for (size_t k = 0; k < e.size() && k < sum.size(); ++k) sum[k] += e[k];
  }
  return sum;
}

Status MeasureAllocation(const std::vector<MeasuredWeight>& weights, const std::vector<int>& chosen,
                         OutputMeter& meter, std::vector<double>* errors) {
  // All decoded at once: the allocated weights' values as doubles (the evaluator holds them as
  // float besides), as much memory as the weights of a dense float64 copy.
  std::vector<PalettizedWeight> decoded(weights.size());
  std::vector<SubstitutedWeight> subs;
  for (size_t i = 0; i < weights.size(); ++i) {
    const size_t j = size_t(chosen[i]);
    if (weights[i].sweep->candidates[j].nbits == 0) continue;
    PALETTIZE_RETURN_IF_ERROR(Decode(weights[i], j, &decoded[i]));
    subs.push_back({weights[i].const_name, weights[i].job->shape, &decoded[i].decoded});
  }
  return meter.Measure(subs, errors);
}

Status SearchMinOutputPsnr(const std::vector<MeasuredWeight>& weights, double min_psnr_db,
                           const std::string& option, OutputMeter& meter, Allocation* a,
                           AllocationOutputs* out) {
  auto probe = [&](const std::vector<int>& chosen, bool* passed) {
    std::vector<double> errors;
    PALETTIZE_RETURN_IF_ERROR(MeasureAllocation(weights, chosen, meter, &errors));
    const double worst = WorstPsnrDb(errors);
    *passed = worst >= min_psnr_db;  // NaN misses
    out->probes.push_back({Bytes(weights, chosen), worst, *passed});
    return Status::OK();
  };
  // The top: every weight at its largest palettized candidate (candidates ascend in bytes, the
  // last kept uncompressed).
  std::vector<int> top(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const auto& c = weights[i].sweep->candidates;
    top[i] = int(c.size()) - 1;
    for (size_t j = 0; j < c.size(); ++j)
      if (c[j].nbits != 0) top[i] = int(j);
  }
  bool passed = false;
  PALETTIZE_RETURN_IF_ERROR(probe(top, &passed));
  if (!passed) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "%s %.4g: even every weight at its largest width gives an output PSNR of %.2f dB on the "
                  "calibration samples",
                  option.c_str(), min_psnr_db, out->probes.back().worst_psnr_db);
    return Status::InvalidArgument(text);
  }
  std::vector<std::vector<KnapsackOption>> curves(weights.size());
  for (size_t i = 0; i < weights.size(); ++i)
    for (const AllocationCandidate& c : weights[i].sweep->candidates) curves[i].push_back({c.bytes, c.cost});
  const uint64_t top_bytes = Bytes(weights, top);
  std::vector<std::vector<int>> path;
  for (std::vector<int>& step : LagrangianPath(curves))
    if (Bytes(weights, step) < top_bytes) path.push_back(std::move(step));
  out->path_steps = path.size();
  // Invariant: path[lo] misses (lo = -1: none probed), path[hi] passes (hi = size: the top).
  long lo = -1, hi = long(path.size());
  while (hi - lo > 1) {
    const long mid = lo + (hi - lo) / 2;
    PALETTIZE_RETURN_IF_ERROR(probe(path[size_t(mid)], &passed));
    (passed ? hi : lo) = mid;
  }
  const std::vector<int>& chosen = hi == long(path.size()) ? top : path[size_t(hi)];
  for (size_t i = 0; i < weights.size(); ++i) a->weights[i].chosen = chosen[i];
  return Status::OK();
}

}  // namespace palettize
