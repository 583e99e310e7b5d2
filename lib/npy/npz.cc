// Layout and checks: npz.h, npy_header.h, zip_archive.h.
#include "npy/npz.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "npy/zip_archive.h"
#include "util/env.h"
#include "util/half.h"
#include "util/staging.h"

namespace palettize {

namespace {

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr char kSuffix[] = ".npy";
constexpr size_t kSuffixSize = 4;

}  // namespace

double NpyArray::At(uint64_t i) const {
  const uint8_t* p = data + i * NpyDTypeSize(dtype);
  switch (dtype) {
    case NpyDType::kBool: return *p != 0 ? 1.0 : 0.0;
    case NpyDType::kI1: return double(Load<int8_t>(p));
    case NpyDType::kI2: return double(Load<int16_t>(p));
    case NpyDType::kI4: return double(Load<int32_t>(p));
    case NpyDType::kI8: return double(Load<int64_t>(p));
    case NpyDType::kU1: return double(*p);
    case NpyDType::kU2: return double(Load<uint16_t>(p));
    case NpyDType::kU4: return double(Load<uint32_t>(p));
    case NpyDType::kU8: return double(Load<uint64_t>(p));
    case NpyDType::kF2: return double(HalfToFloat(Load<uint16_t>(p)));
    case NpyDType::kF4: return double(Load<float>(p));
    case NpyDType::kF8: return Load<double>(p);
  }
  return 0;
}

Status ParseNpz(const uint8_t* data, size_t size, const std::string& file, std::vector<NpyArray>* arrays,
                std::vector<std::vector<uint8_t>>* inflated) {
  arrays->clear();
  std::vector<ZipEntry> entries;
  PALETTIZE_RETURN_IF_ERROR(ReadZipArchive(data, size, file, &entries, inflated));
  for (const ZipEntry& e : entries) {
    const std::string what = file + ": entry '" + e.name + "'";
    if (e.name.size() <= kSuffixSize ||
        e.name.compare(e.name.size() - kSuffixSize, kSuffixSize, kSuffix) != 0)
      return Status::InvalidInput(what + ": not NAME.npy (an .npz holds only .npy arrays)");
    NpyHeader h;
    PALETTIZE_RETURN_IF_ERROR(ParseNpyHeader(e.data, size_t(e.size), what, &h));
    NpyArray a;
    a.name = e.name.substr(0, e.name.size() - kSuffixSize);
    a.dtype = h.dtype;
    a.shape = std::move(h.shape);
    a.elements = h.elements;
    a.data = e.data + h.data_offset;
    arrays->push_back(std::move(a));
  }
  return Status::OK();
}

Status NpzFile::Open(const std::string& path) {
  PALETTIZE_RETURN_IF_ERROR(file_.Open(path));
  return ParseNpz(file_.data(), file_.size(), path, &arrays_, &inflated_);
}

const NpyArray* NpzFile::Find(const std::string& name) const {
  for (const NpyArray& a : arrays_)
    if (a.name == name) return &a;
  return nullptr;
}

Status NpzBytes(const std::vector<NpyOutArray>& arrays, const std::string& file, std::string* out) {
  std::vector<ZipOutEntry> entries;
  entries.reserve(arrays.size());
  for (const NpyOutArray& a : arrays) {
    uint64_t elements = 1;
    for (const uint64_t d : a.shape) elements *= d;
    if (a.bytes.size() != elements * NpyDTypeSize(a.dtype))  // a caller's bug, not the user's
      return Status::InvalidArgument(file + ": array '" + a.name + "': " + std::to_string(a.bytes.size()) +
                                     " bytes do not hold its shape");
    entries.push_back({a.name + kSuffix, NpyHeaderBytes(a.dtype, a.shape) + a.bytes});
  }
  return ZipStored(entries, file, out);
}

Status WriteNpz(const std::string& path, const std::vector<NpyOutArray>& arrays, bool overwrite) {
  std::string bytes;
  PALETTIZE_RETURN_IF_ERROR(NpzBytes(arrays, path, &bytes));
  StagedOutput staged;
  PALETTIZE_RETURN_IF_ERROR(staged.Begin(path, StagedOutput::Kind::kFile, overwrite));
  Env* env = Env::Current();
  const char* p = bytes.data();
  uint64_t offset = 0, left = bytes.size();
  while (left > 0) {
    const ssize_t w = env->WriteAt(staged.fd(), p, size_t(std::min<uint64_t>(left, 1 << 30)), off_t(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      return Status::IOError(path + ": cannot write: " + std::strerror(errno));
    }
    p += w, offset += uint64_t(w), left -= uint64_t(w);
  }
  PALETTIZE_RETURN_IF_ERROR(staged.Close());
  return CommitStaged({&staged});
}

}  // namespace palettize
