// An .mlpackage on disk: its manifest, the root model (parsed), and the weight files its ML
// Programs refer to (memory-mapped, validated on open).
//
//   X.mlpackage/Manifest.json
//   X.mlpackage/Data/<root item path>              model.mlmodel, a CoreML.Specification.Model
//   X.mlpackage/Data/<...>/weights/weight.bin      "@model_path/weights/weight.bin" in MIL, where
//                                                  @model_path is the folder of model.mlmodel
//   X.mlpackage/Data/<other items>                 copied through untouched
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "Model.pb.h"
#include "blob/blob_reader.h"
#include "blob/blob_writer.h"
#include "package/manifest.h"
#include "palettize/status.h"
#include "util/file.h"
#include "util/staging.h"

namespace palettize {

struct WeightFile {
  MappedFile file;
  BlobReader reader;
};

// New blob data for Save(). A value whose blobFileValue.fileName is kPendingBlobFile takes its
// data from pending[offset] and is re-pointed into that entry's `file_name`.
inline constexpr char kPendingBlobFile[] = "@palettize_pending";
struct PendingBlob {
  std::string file_name;  // the MIL weight file it belongs in, "@model_path/weights/weight.bin"
  uint32_t blob_dtype = 0;
  std::string data;
  uint64_t padding_bits = 0;
};

// Whole-file reads of a package are bounded (README "What palettize reads"): Manifest.json to
// 1 MiB, model.mlmodel to protobuf's own limit of 2 GiB - 1 byte. Weight files are mapped, not read.
inline constexpr uint64_t kMaxManifestBytes = uint64_t(1) << 20;
inline constexpr uint64_t kMaxModelBytes = (uint64_t(1) << 31) - 1;

class Package {
 public:
  // Reads Manifest.json and the root model; weight files are opened on first use. First the whole
  // package is walked: a symbolic link, FIFO, device or socket anywhere in it is refused
  // (InvalidInput naming it) before anything is read, and later opens follow no link either.
  // `path` itself may be a link to the package.
  Status Load(const std::string& path);

  const std::string& path() const { return path_; }
  const Manifest& manifest() const { return manifest_; }
  const std::string& model_path() const { return model_path_; }
  CoreML::Specification::Model& model() { return model_; }
  const CoreML::Specification::Model& model() const { return model_; }

  // Resolves a MIL blob file name ("@model_path/weights/weight.bin") to its validated reader.
  // Spellings of one file ("weights/./weight.bin", "weights//weight.bin") share one reader.
  Status OpenWeightFile(const std::string& mil_file_name, const BlobReader** reader);

  // Writes `model` (this package's model, possibly changed) as a new package at `out_path`.
  // Every blob the model refers to is copied into a fresh weight file with 64-byte alignment and
  // the values are re-pointed; every other manifest item is copied through. The package is
  // assembled beside `out_path` and renamed into place, so no half-written package is ever
  // visible there. An existing `out_path` is an error unless `overwrite`.
  Status Save(const CoreML::Specification::Model& model, const std::string& out_path, bool overwrite,
              const std::vector<PendingBlob>& pending = {});

  // The on-disk path of a MIL blob file name, under `package_root`'s Data/.
  Status ResolveBlobPath(const std::string& mil_file_name, const std::string& package_root,
                         std::string* out) const;

  // The one spelling of a MIL blob file name: "@model_path/" and the path's components, without
  // "." and empty ones ("@model_path/weights/./weight.bin" and "@model_path/weights//weight.bin"
  // are "@model_path/weights/weight.bin"). A name not under @model_path, naming no file, or with
  // a ".." component is InvalidInput. Everything keyed by a blob file keys by this.
  Status NormalizeBlobFileName(const std::string& mil_file_name, std::string* out) const;

 private:
  friend class PackageWriter;

  // Reads `rel` below the package (no link followed), refusing more than `max_bytes`.
  Status ReadUnder(const std::string& rel, uint64_t max_bytes, const std::string& what,
                   std::string* out) const;
  // The package-relative path ("Data/com.apple.CoreML/weights/weight.bin") of a normalised name.
  std::string BlobRelPath(const std::string& normalized) const;

  std::string path_;
  Manifest manifest_;
  std::string model_rel_;   // root model path relative to Data/
  std::string model_path_;  // path_/Data/model_rel_
  CoreML::Specification::Model model_;
  std::map<std::string, std::unique_ptr<WeightFile>> weight_files_;
};

}  // namespace palettize

namespace palettize {

// Writes a package derived from a loaded one, streaming: new blobs go to the output's weight files
// as soon as they are made (AppendNew), so they need not be held in memory; Finish() then copies
// the input's blobs that are still referenced and writes the model and manifest; Commit() renames
// the assembled folder (OUT.partial-XXXXXX, util/staging.h) into place, together with other staged
// outputs (the report). Until Commit() succeeds nothing is visible at the output path, and a
// writer destroyed uncommitted removes what it wrote.
class PackageWriter {
 public:
  PackageWriter() = default;
  ~PackageWriter();
  PackageWriter(const PackageWriter&) = delete;
  PackageWriter& operator=(const PackageWriter&) = delete;

  Status Begin(Package* package, const std::string& out_path, bool overwrite);

  // Writes `blob` now. A value refers to it with fileName kPendingBlobFile and offset `*handle`.
  Status AppendNew(const PendingBlob& blob, uint64_t* handle);

  // `model` is the package's model as it should be written (values may refer to new blobs).
  Status Finish(const CoreML::Specification::Model& model);

  // Renames the package into place together with `also` (the staged report, emitted config, plot;
  // each may be null or inactive): all of them or, on failure, none, every previous file left as
  // it was.
  Status Commit(const std::vector<StagedOutput*>& also = {});
  // The staged package (complete after Finish, until Commit renames it into place).
  const std::string& staged_path() const { return tmp_; }

 private:
  Status WriterFor(const std::string& mil_file_name, BlobWriter** out);

  Package* package_ = nullptr;
  std::string out_;
  StagedOutput staged_;
  std::string tmp_;  // staged_.path()
  std::map<std::string, std::unique_ptr<BlobWriter>> writers_;
  std::vector<std::pair<std::string, uint64_t>> placed_;  // handle -> (file name, metadata offset)
};

}  // namespace palettize
