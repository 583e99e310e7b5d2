#include "blob/blob_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "blob/blob_format.h"
#include "util/staging.h"

namespace palettize {

BlobWriter::~BlobWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

Status BlobWriter::Open(const std::string& path) {
  path_ = path;
  // A new file in a staged package (util/staging.h): created exclusively, never through a link.
  const int fd = CreateNewFile(path);
  if (fd < 0 || (file_ = ::fdopen(fd, "wb")) == nullptr) {
    const Status st = Status::IOError(path + ": cannot create: " + std::strerror(errno));
    if (fd >= 0) ::close(fd);
    return st;
  }
  uint8_t header[kBlobHeaderSize] = {};
  StoreLE32(header + 4, kBlobStorageVersion);
  return Write(header, sizeof header);
}

Status BlobWriter::Write(const void* data, size_t size) {
  if (size > 0 && std::fwrite(data, 1, size, file_) != size)
    return Status::IOError(path_ + ": cannot write: " + std::strerror(errno));
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
  uint8_t count[4];
  StoreLE32(count, count_);
  if (std::fseek(file_, 0, SEEK_SET) != 0 || std::fwrite(count, 1, 4, file_) != 4 ||
      std::fflush(file_) != 0 || fsync(fileno(file_)) != 0) {
    return Status::IOError(path_ + ": cannot write: " + std::strerror(errno));
  }
  int rc = std::fclose(file_);
  file_ = nullptr;
  if (rc != 0) return Status::IOError(path_ + ": cannot close: " + std::strerror(errno));
  return Status::OK();
}

}  // namespace palettize
