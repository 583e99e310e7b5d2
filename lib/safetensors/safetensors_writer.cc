// Layout: safetensors.h; the rules this writer keeps: safetensors_writer.h.
#include "safetensors/safetensors_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "util/env.h"

namespace palettize {

std::string SafeTensorsHeader(const std::vector<SafeTensorSpec>& tensors,
                              const std::map<std::string, std::string>& metadata,
                              std::vector<uint64_t>* offsets) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  offsets->clear();
  uint64_t offset = 0;
  for (const SafeTensorSpec& t : tensors) {
    uint64_t elements = 1;
    for (uint64_t d : t.shape) elements *= d;
    const uint64_t bytes = elements * SafeDTypeSize(t.dtype);
    header[t.name] = {
        {"dtype", SafeDTypeName(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offsets->push_back(offset);
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xFF);
  return out + text;
}

SafeTensorsWriter::~SafeTensorsWriter() = default;

Status SafeTensorsWriter::Failed(const char* what) {
  // Named by the output the user asked for; the file beside it is ours.
  return Status::IOError(path_ + ": " + what + ": " + std::strerror(errno));
}

Status SafeTensorsWriter::Begin(const std::string& path, bool overwrite) {
  path_ = path;
  return staged_.Begin(path, StagedOutput::Kind::kFile, overwrite);
}

Status SafeTensorsWriter::Append(const void* data, uint64_t n) { return WriteAt(end_, data, n); }

Status SafeTensorsWriter::WriteAt(uint64_t offset, const void* data, uint64_t n) {
  const char* p = static_cast<const char*>(data);
  Env* env = Env::Current();
  while (n > 0) {
    const ssize_t w = env->WriteAt(staged_.fd(), p, size_t(std::min<uint64_t>(n, 1 << 30)), off_t(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      return Failed("cannot write");
    }
    p += w, offset += uint64_t(w), n -= uint64_t(w);
  }
  end_ = std::max(end_, offset);
  return Status::OK();
}

Status SafeTensorsWriter::Finish(const std::vector<StagedOutput*>& also) {
  std::vector<StagedOutput*> outputs = {&staged_};
  for (StagedOutput* o : also)
    if (o != nullptr) outputs.push_back(o);
  return CommitStaged(outputs);
}

}  // namespace palettize
