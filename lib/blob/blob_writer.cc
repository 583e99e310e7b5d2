#include "blob/blob_writer.h"

#include <cerrno>
#include <cstring>

#include "blob/blob_format.h"
#include "util/env.h"
#include "util/staging.h"

namespace palettize {

namespace {
// Below this a piece is gathered in the buffer; above it, written directly (after the buffer).
constexpr size_t kBufferBytes = 1 << 16;
}  // namespace

BlobWriter::~BlobWriter() {
  if (fd_ >= 0) Env::Current()->Close(fd_);
}

Status BlobWriter::Open(const std::string& path) {
  path_ = path;
  // A new file in a staged package (util/staging.h): created exclusively, never through a link.
  fd_ = CreateNewFile(path);
  if (fd_ < 0) return Status::IOError(path + ": cannot create: " + std::strerror(errno));
  uint8_t header[kBlobHeaderSize] = {};
  StoreLE32(header + 4, kBlobStorageVersion);
  return Write(header, sizeof header);
}

Status BlobWriter::WriteOut(const uint8_t* p, size_t n) {
  Env* env = Env::Current();
  while (n > 0) {
    const ssize_t w = env->Write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = ENOSPC;
      return Status::IOError(path_ + ": cannot write: " + std::strerror(errno));
    }
    p += w, n -= size_t(w);
  }
  return Status::OK();
}

Status BlobWriter::Write(const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  if (buffer_.size() + size > kBufferBytes) {
    PALETTIZE_RETURN_IF_ERROR(WriteOut(buffer_.data(), buffer_.size()));
    buffer_.clear();
  }
  if (size <= kBufferBytes)
    buffer_.insert(buffer_.end(), p, p + size);
  else
    PALETTIZE_RETURN_IF_ERROR(WriteOut(p, size));  // a large blob is not copied
  position_ += size;
  return Status::OK();
}

Status BlobWriter::Append(uint32_t blob_dtype, const void* data, uint64_t size, uint64_t padding_bits,
                          uint64_t* metadata_offset) {
  static const uint8_t kZeros[kBlobAlignment] = {};
  if (uint64_t rem = position_ % kBlobAlignment; rem != 0)
    PALETTIZE_RETURN_IF_ERROR(Write(kZeros, kBlobAlignment - rem));
  *metadata_offset = position_;
  uint8_t meta[kBlobMetadataSize] = {};
  StoreLE32(meta, kBlobSentinel);
  StoreLE32(meta + 4, blob_dtype);
  StoreLE64(meta + 8, size);
  StoreLE64(meta + 16, position_ + kBlobMetadataSize);
  StoreLE64(meta + 24, padding_bits);
  PALETTIZE_RETURN_IF_ERROR(Write(meta, sizeof meta));
  PALETTIZE_RETURN_IF_ERROR(Write(data, size));
  ++count_;
  return Status::OK();
}

Status BlobWriter::Finish() {
  PALETTIZE_RETURN_IF_ERROR(WriteOut(buffer_.data(), buffer_.size()));
  buffer_.clear();
  Env* env = Env::Current();
  uint8_t count[4];
  StoreLE32(count, count_);
  // The header's count, at offset 0, now that it is known; then the file is made durable.
  const ssize_t w = env->WriteAt(fd_, count, 4, 0);
  if (w != 4 || env->Sync(fd_) != 0) {
    if (w >= 0 && w != 4) errno = ENOSPC;
    return Status::IOError(path_ + ": cannot write: " + std::strerror(errno));
  }
  const int rc = env->Close(fd_);
  fd_ = -1;
  if (rc != 0) return Status::IOError(path_ + ": cannot close: " + std::strerror(errno));
  return Status::OK();
}

}  // namespace palettize
