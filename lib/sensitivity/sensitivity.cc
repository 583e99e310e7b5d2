// Matching rule and normalisation: sensitivity.h.
#include "sensitivity/sensitivity.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "MIL.pb.h"
#include "util/env.h"
#include "util/file.h"
#include "util/half.h"
#include "util/pow2.h"
#include "util/safe_input.h"

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

// Elements [begin, begin + n) of `t` as doubles. With `fd` >= 0, from the file (t's data at byte
// `file_offset`) with pread, a piece at a time through a per-thread buffer of at most 32 KiB, so
// that none of the file's mapped pages is touched (sensitivity.h, ElementWeights). A read that
// fails or comes up short falls back to the mapping, which holds the same bytes.
void ReadElements(const SafeTensor& t, int fd, uint64_t file_offset, uint64_t begin, uint64_t n,
                  double* out) {
  if (fd < 0) {
    t.Read(begin, n, out);
    return;
  }
  constexpr uint64_t kPiece = 1 << 12;
  const size_t size = SafeDTypeSize(t.dtype);
  thread_local std::vector<uint8_t> buf;
  buf.resize(kPiece * 8);
  SafeTensor piece;
  piece.dtype = t.dtype;
  piece.data = buf.data();
  for (uint64_t b = 0; b < n; b += kPiece) {
    const uint64_t m = std::min(kPiece, n - b);
    const size_t want = size_t(m * size);
    const off_t at = off_t(file_offset + (begin + b) * size);
    size_t got = 0;
    while (got < want) {
      const ssize_t r = Env::Current()->ReadAt(fd, buf.data() + got, want - got, at + off_t(got));
      if (r > 0)
        got += size_t(r);
      else if (!(r < 0 && errno == EINTR))
        break;
    }
    if (got < want) {
      t.Read(begin + b, m, out + b);
      continue;
    }
    piece.elements = m;
    piece.Read(0, m, out + b);
  }
}

// Whether `t`'s values, rounded to the const's float dtype, are bit for bit the const's `data`.
// `t` is read from the file a chunk at a time (ReadElements), so none of it stays resident.
bool SameValues(const SafeTensor& t, int fd, uint64_t file_offset, const uint8_t* data, int mil_type) {
  constexpr uint64_t kChunk = 1 << 14;
  std::vector<double> buf(std::min(kChunk, t.elements));
  for (uint64_t b = 0; b < t.elements; b += kChunk) {
    const uint64_t n = std::min(kChunk, t.elements - b);
    ReadElements(t, fd, file_offset, b, n, buf.data());
    for (uint64_t i = 0; i < n; ++i) {
      if (mil_type == mil::DataType::FLOAT16) {
        uint16_t h;
        std::memcpy(&h, data + 2 * (b + i), 2);
        if (DoubleToHalfBits(buf[i]) != h) return false;
      } else {
        // Bit patterns, not values: -0 and 0 differ, and a NaN equals itself.
        const float f = float(buf[i]);
        uint32_t want, got;
        std::memcpy(&want, &f, 4);
        std::memcpy(&got, data + 4 * (b + i), 4);
        if (want != got) return false;
      }
    }
  }
  return true;
}

}  // namespace

void ElementWeights::Read(uint64_t begin, uint64_t n, double* out) const {
  ReadElements(*tensor, fd, file_offset, begin, n, out);
  if (!normalize) {
    if (exponent != 0)
      for (uint64_t i = 0; i < n; ++i) out[i] = std::ldexp(out[i], -exponent);
    return;
  }
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

SensitivitySet::~SensitivitySet() {
  if (fd_ >= 0) Env::Current()->Close(fd_);
}

Status SensitivitySet::Open(const std::string& path, bool normalize) {
  normalize_ = normalize;
  PALETTIZE_RETURN_IF_ERROR(file_.Open(path));
  // A descriptor for the reads (ElementWeights), kept only when it is the file mapped: same size
  // and same leading bytes (the header). Otherwise the reads use the mapping, which is correct too.
  Env* env = Env::Current();
  if (fd_ >= 0) env->Close(fd_);
  fd_ = -1;
  UniqueFd fd;
  struct stat st;
  if (OpenRegularFile(path, &fd, &st).ok()) {
    fd_ = fd.release();
    const MappedFile& map = file_.mapped();
    std::vector<uint8_t> head(std::min<size_t>(map.size(), 1 << 16));
    if (uint64_t(st.st_size) != map.size() ||
        env->ReadAt(fd_, head.data(), head.size(), 0) != ssize_t(head.size()) ||
        std::memcmp(head.data(), map.data(), head.size()) != 0) {
      env->Close(fd_);
      fd_ = -1;
    }
  }
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
  // normalisation. Read from the file (ReadElements), so none of it becomes resident.
  std::vector<double> buf;
  for (auto& [key, k] : keys_) {
    const SafeTensor& t = *k.sensitivity;
    constexpr uint64_t kChunk = 1 << 16;
    buf.resize(kChunk);
    k.max = 0;
    k.min_positive = INFINITY;
    for (uint64_t b = 0; b < t.elements; b += kChunk) {
      const uint64_t n = std::min(kChunk, t.elements - b);
      ReadElements(t, fd_, OffsetOf(t), b, n, buf.data());
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
  m.weights.exponent = normalize_ ? 0 : FarExponent(k.max);
  m.weights.mapped = fd_ < 0;
  m.weights.fd = fd_;
  m.weights.file_offset = OffsetOf(*k.sensitivity);
  return m;
}

Status SensitivitySet::Match(const ConstWeight& w, const uint8_t* data, SensitivityMatch* out) {
  return Match(w.name, w.shape, data, w.value != nullptr && w.value->has_blobfilevalue(), out);
}

Status SensitivitySet::Match(const std::string& name, const TensorShape& shape, const uint8_t* data,
                             bool mapped, SensitivityMatch* out) {
  *out = SensitivityMatch();
  const auto named = keys_.find(name);
  if (named != keys_.end()) {
    const SafeTensor& t = *named->second.sensitivity;
    if (t.shape != shape.dims)
      return Status::InvalidInput(path() + ": " + Quoted(t.name) + " is " + DescribeSafeTensor(t) +
                                  ", but const '" + name + "' is " + DescribeShape(shape));
    *out = MakeMatch(named->first, named->second, "name");
    return Status::OK();
  }
  const int type = shape.mil_type;
  if (data == nullptr || (type != mil::DataType::FLOAT16 && type != mil::DataType::FLOAT32))
    return Status::OK();
  // The comparisons touch the const's pages too: when they come from weight.bin's mapping, they are
  // let go again, so that matching every weight first does not keep the whole model resident.
  const uint64_t bytes = shape.elements * (type == mil::DataType::FLOAT16 ? 2 : 4);
  for (auto& [key, k] : keys_) {
    if (k.values == nullptr || k.values->shape != shape.dims) continue;
    const bool same = SameValues(*k.values, fd_, OffsetOf(*k.values), data, type);
    if (mapped) ReleaseMappedPages(data, bytes);
    if (!same) continue;
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
