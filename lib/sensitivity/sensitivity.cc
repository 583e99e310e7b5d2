// Matching rule and normalisation: sensitivity.h.
#include "sensitivity/sensitivity.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "MIL.pb.h"
#include "util/half.h"

namespace palettize {

namespace {

constexpr char kSuffix[] = ".sensitivity";
constexpr size_t kSuffixLen = sizeof kSuffix - 1;
// coremltools' SKMPalettizer clips normalised sensitivities to at least this.
constexpr double kClip = 1e-12;

bool EndsWithSuffix(const std::string& s) {
  return s.size() > kSuffixLen && s.compare(s.size() - kSuffixLen, kSuffixLen, kSuffix) == 0;
}

std::string Quoted(const std::string& name) { return "tensor '" + name + "'"; }

std::string ValueText(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

// Whether `t`'s values, rounded to the const's float dtype, are bit for bit the const's `data`.
bool SameValues(const SafeTensor& t, const uint8_t* data, int mil_type) {
  for (uint64_t i = 0; i < t.elements; ++i) {
    const double x = t.At(i);
    if (mil_type == mil::DataType::FLOAT16) {
      uint16_t h;
      std::memcpy(&h, data + 2 * i, 2);
      if (DoubleToHalfBits(x) != h) return false;
    } else {
      const float f = float(x);
      if (std::memcmp(&f, data + 4 * i, 4) != 0) return false;
    }
  }
  return true;
}

}  // namespace

void ElementWeights::Read(uint64_t begin, uint64_t n, double* out) const {
  tensor->Read(begin, n, out);
  if (!normalize) return;
  if (max == 0) {
    std::fill(out, out + n, 1.0);
    return;
  }
  const double low = std::max(min_positive / max, kClip);
  for (uint64_t i = 0; i < n; ++i) out[i] = std::max(out[i] / max, low);
}

void ElementWeights::Release(uint64_t begin, uint64_t n) const {
  if (!mapped) return;
  const size_t size = SafeDTypeSize(tensor->dtype);
  ReleaseMappedPages(tensor->data + begin * size, n * size);
}

Status SensitivitySet::Open(const std::string& path, bool normalize) {
  normalize_ = normalize;
  PALETTIZE_RETURN_IF_ERROR(file_.Open(path));
  for (const SafeTensor& t : file_.tensors()) {
    if (EndsWithSuffix(t.name)) {
      const std::string key = t.name.substr(0, t.name.size() - kSuffixLen);
      Key& k = keys_[key];
      k.sensitivity = &t;
      k.values = file_.Find(key);
      if (k.values && k.values->shape != t.shape)
        return Status::InvalidInput(path + ": " + Quoted(t.name) + " is " + DescribeSafeTensor(t) + ", but " +
                                    Quoted(key) + " is " + DescribeSafeTensor(*k.values));
    } else if (!file_.Find(t.name + kSuffix)) {
      keys_[t.name].sensitivity = &t;
    }
  }
  // One pass over every sensitivity: the values are checked, and the extremes kept for
  // normalisation. Pages are released after, so the file does not stay resident.
  std::vector<double> buf;
  for (auto& [key, k] : keys_) {
    const SafeTensor& t = *k.sensitivity;
    constexpr uint64_t kChunk = 1 << 16;
    buf.resize(kChunk);
    k.max = 0;
    k.min_positive = INFINITY;
    for (uint64_t b = 0; b < t.elements; b += kChunk) {
      const uint64_t n = std::min(kChunk, t.elements - b);
      t.Read(b, n, buf.data());
      for (uint64_t i = 0; i < n; ++i) {
        const double v = buf[i];
        if (!(v >= 0) || std::isinf(v))
          return Status::InvalidInput(path + ": " + Quoted(t.name) + ": element " + std::to_string(b + i) +
                                      " is " + ValueText(v) + "; sensitivities must be finite and >= 0");
        k.max = std::max(k.max, v);
        if (v > 0) k.min_positive = std::min(k.min_positive, v);
      }
    }
    if (std::isinf(k.min_positive)) k.min_positive = 0;
    ReleaseMappedPages(t.data, t.bytes);
  }
  return Status::OK();
}

SensitivityMatch SensitivitySet::MakeMatch(const std::string& key, Key& k, const char* how) const {
  k.used = true;
  SensitivityMatch m;
  m.key = key;
  m.tensor = k.sensitivity->name;
  m.match = how;
  m.weights.tensor = k.sensitivity;
  m.weights.normalize = normalize_;
  m.weights.max = k.max;
  m.weights.min_positive = k.min_positive;
  m.weights.mapped = true;
  return m;
}

Status SensitivitySet::Match(const ConstWeight& w, const uint8_t* data, SensitivityMatch* out) {
  *out = SensitivityMatch();
  const auto named = keys_.find(w.name);
  if (named != keys_.end()) {
    const SafeTensor& t = *named->second.sensitivity;
    if (t.shape != w.shape.dims)
      return Status::InvalidInput(path() + ": " + Quoted(t.name) + " is " + DescribeSafeTensor(t) + ", but const '" +
                                  w.name + "' is " + DescribeShape(w.shape));
    *out = MakeMatch(named->first, named->second, "name");
    return Status::OK();
  }
  const int type = w.shape.mil_type;
  if (data == nullptr || (type != mil::DataType::FLOAT16 && type != mil::DataType::FLOAT32)) return Status::OK();
  for (auto& [key, k] : keys_) {
    if (k.values == nullptr || k.values->shape != w.shape.dims || !SameValues(*k.values, data, type)) continue;
    ReleaseMappedPages(k.values->data, k.values->bytes);
    *out = MakeMatch(key, k, "values");
    return Status::OK();
  }
  return Status::OK();
}

std::vector<std::string> SensitivitySet::Unused() const {
  std::vector<std::string> out;
  for (const auto& [key, k] : keys_)
    if (!k.used) out.push_back(key);
  return out;
}

}  // namespace palettize
