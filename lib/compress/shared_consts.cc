#include "compress/shared_consts.h"

#include <string>

#include "compress/spine.h"

namespace palettize {

namespace {

// Equal for two consts of one program that hold one blob and are palettized alike. Two spellings
// of one weight file are one blob.
Status BlobKey(const Package& package, const ConstWeight& w, const WeightPlan& plan, std::string* key) {
  const auto& b = w.value->blobfilevalue();
  std::string file;
  PALETTIZE_RETURN_IF_ERROR(package.NormalizeBlobFileName(b.filename(), &file));
  *key = w.program + "\n" + file + "\n" + std::to_string(b.offset()) + "\n" + DescribeConfig(plan.config) +
         "\n" + std::to_string(plan.channel_axis) + "\n" + std::to_string(plan.group_size) + "\n" +
         std::to_string(w.shape.mil_type);
  for (uint64_t d : w.shape.dims) *key += "x" + std::to_string(d);
  return Status::OK();
}

}  // namespace

Status SharedConsts::Group(const Package& package, const std::vector<ConstWeight>& weights,
                           const std::vector<WeightPlan>& plans, std::vector<size_t>* firsts) {
  primary_.resize(weights.size());
  std::map<std::string, size_t> first_of_blob;
  for (size_t i = 0; i < weights.size(); ++i) {
    primary_[i] = i;
    if (!plans[i].palettize) continue;
    if (weights[i].value->has_blobfilevalue()) {
      std::string key;
      PALETTIZE_RETURN_IF_ERROR(BlobKey(package, weights[i], plans[i], &key));
      const auto [it, inserted] = first_of_blob.emplace(key, i);
      if (!inserted) {
        primary_[i] = it->second;
        copies_.push_back(i);
        firsts_[it->second];
        continue;
      }
    }
    firsts->push_back(i);
  }
  return Status::OK();
}

void SharedConsts::CopySensitivity(std::vector<WeightReport>* reports) const {
  for (size_t c : copies_) {
    const WeightReport& first = (*reports)[primary_[c]];
    WeightReport& r = (*reports)[c];
    r.sensitivity_checked = true;
    r.sensitivity = first.sensitivity;
    r.sensitivity_match = first.sensitivity_match;
    r.sensitivity_note = first.sensitivity_note;
  }
}

BlobSink SharedConsts::SinkFor(size_t i, const BlobSink& sink) {
  const auto found = firsts_.find(i);
  if (found == firsts_.end()) return sink;
  std::vector<std::pair<uint64_t, size_t>>* blobs = &found->second.blobs;
  return [blobs, sink](PendingBlob&& b, uint64_t* handle) {
    const size_t bytes = b.data.size();
    PALETTIZE_RETURN_IF_ERROR(sink(std::move(b), handle));
    blobs->emplace_back(*handle, bytes);
    return Status::OK();
  };
}

void SharedConsts::Keep(size_t i, PalettizedWeight&& result) {
  const auto found = firsts_.find(i);
  if (found != firsts_.end()) found->second.result = std::move(result);
}

Status SharedConsts::RewriteCopies(const std::vector<ConstWeight>& weights, const Rewrite& rewrite,
                                   std::vector<WeightReport>* reports) const {
  for (size_t c : copies_) {
    const WeightReport& first = (*reports)[primary_[c]];
    WeightReport& r = (*reports)[c];
    r.shared_with = (first.function.empty() ? "" : first.function + "/") + first.name;
    if (!first.palettized) {
      r.palettized = false;
      r.reason = first.reason;
      continue;
    }
    const First& s = firsts_.at(primary_[c]);
    size_t next_blob = 0;
    const BlobSink replay = [&](PendingBlob&& b, uint64_t* handle) {
      if (next_blob >= s.blobs.size() || s.blobs[next_blob].second != b.data.size())
        return Status::InvalidInput(weights[c].name +
                                    ": internal error: a shared const's copy encodes differently");
      *handle = s.blobs[next_blob++].first;
      return Status::OK();
    };
    PALETTIZE_RETURN_IF_ERROR(rewrite(c, s.result, replay, &r.bytes_after));
    r.config = first.config;  // the same but for a bit allocation's nbits
    ReportResult(s.result, &r);
  }
  return Status::OK();
}

}  // namespace palettize
