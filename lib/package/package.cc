#include "package/package.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/common.h>  // GOOGLE_PROTOBUF_VERSION
#if GOOGLE_PROTOBUF_VERSION < 4022000
#include <google/protobuf/stubs/logging.h>
#endif

#include "blob/blob_writer.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "mil/weights.h"
#include "package/tensor_reader.h"
#include "util/safe_input.h"

namespace fs = std::filesystem;

namespace palettize {

namespace {

constexpr char kModelPathPrefix[] = "@model_path/";

// Silences protobuf's own log lines while in scope. protobuf 22 and later (Homebrew's) log through
// Abseil and have no LogSilencer: built against them, such a line can show before our error.
#if GOOGLE_PROTOBUF_VERSION < 4022000
using ProtobufQuiet = google::protobuf::LogSilencer;
#else
struct ProtobufQuiet {};
#endif

// Serializes with sorted map keys, so the same model always gives the same bytes.
bool SerializeDeterministic(const google::protobuf::Message& m, std::string* out) {
  [[maybe_unused]] ProtobufQuiet quiet;
  out->clear();
  google::protobuf::io::StringOutputStream raw(out);
  google::protobuf::io::CodedOutputStream coded(&raw);
  coded.SetSerializationDeterministic(true);
  return m.SerializeToCodedStream(&coded) && !coded.HadError();
}

}  // namespace

Status Package::Load(const std::string& path) {
  path_ = path;
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  if (!IsDirectory(path_)) {
    if (!PathExists(path_)) return Status::IOError(path_ + ": no such package");
    return Status::InvalidInput(path_ + ": not an .mlpackage folder");
  }
  // Before any read: a link could show or copy a file outside the package (its target's bytes in
  // an error message), a link to "." would make the copy unbounded, and a FIFO would block.
  PALETTIZE_RETURN_IF_ERROR(WalkUnder(path_, "", [](const TreeEntry&) { return Status::OK(); }));

  const std::string manifest_path = JoinPath(path_, "Manifest.json");
  if (!PathExists(manifest_path)) return Status::InvalidInput(manifest_path + ": missing");
  std::string text;
  PALETTIZE_RETURN_IF_ERROR(ReadUnder("Manifest.json", kMaxManifestBytes, "a Manifest.json", &text));
  PALETTIZE_RETURN_IF_ERROR(manifest_.Parse(text, manifest_path));

  const std::string data = JoinPath(path_, "Data");
  for (const ManifestItem& item : manifest_.items()) {
    if (!PathExists(JoinPath(data, item.path)))
      return Status::InvalidInput(manifest_path + ": itemInfoEntries." + item.id + ".path: '" + item.path +
                                  "' does not exist in the package");
  }
  model_rel_ = manifest_.root().path;
  model_path_ = JoinPath(data, model_rel_);
  std::string bytes;
  PALETTIZE_RETURN_IF_ERROR(
      ReadUnder(JoinPath("Data", model_rel_), kMaxModelBytes, "a model.mlmodel", &bytes));
  // The library prints nothing: protobuf's own log line (invalid UTF-8 in a string field) would
  // come before our one-line error.
  [[maybe_unused]] ProtobufQuiet quiet;
  if (!model_.ParseFromString(bytes))
    return Status::InvalidInput(model_path_ + ": not a valid Core ML model (protobuf parse failed)");
  return Status::OK();
}

Status Package::ReadUnder(const std::string& rel, uint64_t max_bytes, const std::string& what,
                          std::string* out) const {
  const std::string shown = JoinPath(path_, rel);
  UniqueFd fd;
  struct stat st;
  PALETTIZE_RETURN_IF_ERROR(OpenUnder(path_, rel, &fd, &st));
  if (S_ISDIR(st.st_mode)) return Status::IOError(shown + ": is a folder, expected a file");
  return ReadAll(fd.get(), st, shown, max_bytes, what, out);
}

Status Package::NormalizeBlobFileName(const std::string& mil_file_name, std::string* out) const {
  const std::string prefix = kModelPathPrefix;
  if (mil_file_name.compare(0, prefix.size(), prefix) != 0)
    return Status::InvalidInput(model_path_ + ": blob file name '" + mil_file_name +
                                "' does not start with " + prefix);
  std::string rel;
  size_t start = prefix.size();
  bool leaves = false;
  while (!leaves && start <= mil_file_name.size()) {
    size_t end = std::min(mil_file_name.find('/', start), mil_file_name.size());
    const std::string part = mil_file_name.substr(start, end - start);
    leaves = part == "..";
    if (!part.empty() && part != ".") rel += (rel.empty() ? "" : "/") + part;
    start = end + 1;
  }
  if (leaves || rel.empty())
    return Status::InvalidInput(model_path_ + ": blob file name '" + mil_file_name + "' leaves the package");
  *out = prefix + rel;
  return Status::OK();
}

std::string Package::BlobRelPath(const std::string& normalized) const {
  return JoinPath(JoinPath("Data", Dirname(model_rel_)), normalized.substr(sizeof kModelPathPrefix - 1));
}

Status Package::ResolveBlobPath(const std::string& mil_file_name, const std::string& package_root,
                                std::string* out) const {
  std::string name;
  PALETTIZE_RETURN_IF_ERROR(NormalizeBlobFileName(mil_file_name, &name));
  *out = JoinPath(package_root, BlobRelPath(name));
  return Status::OK();
}

Status Package::OpenWeightFile(const std::string& mil_file_name, const BlobReader** reader) {
  std::string name;
  PALETTIZE_RETURN_IF_ERROR(NormalizeBlobFileName(mil_file_name, &name));
  auto it = weight_files_.find(name);
  if (it == weight_files_.end()) {
    const std::string rel = BlobRelPath(name);
    const std::string path = JoinPath(path_, rel);
    auto wf = std::make_unique<WeightFile>();
    Status st = wf->file.OpenUnder(path_, rel);
    if (!st.ok())
      return st.code() == Status::Code::kIOError && !PathExists(path)
                 ? Status::InvalidInput(path + ": missing (named by " + model_path_ + ")")
                 : st;
    PALETTIZE_RETURN_IF_ERROR(wf->reader.Open(wf->file.data(), wf->file.size(), path));
    it = weight_files_.emplace(name, std::move(wf)).first;
  }
  *reader = &it->second->reader;
  return Status::OK();
}

Status Package::Save(const spec::Model& model, const std::string& out_path, bool overwrite,
                     const std::vector<PendingBlob>& pending) {
  PackageWriter writer;
  PALETTIZE_RETURN_IF_ERROR(writer.Begin(this, out_path, overwrite));
  for (const PendingBlob& b : pending) {
    uint64_t handle;
    PALETTIZE_RETURN_IF_ERROR(writer.AppendNew(b, &handle));
  }
  PALETTIZE_RETURN_IF_ERROR(writer.Finish(model));
  return writer.Commit();
}

PackageWriter::~PackageWriter() = default;

Status PackageWriter::Begin(Package* package, const std::string& out_path, bool overwrite) {
  package_ = package;
  out_ = out_path;
  while (out_.size() > 1 && out_.back() == '/') out_.pop_back();
  // Which paths may be written (not the input, not inside it, an existing one only of its kind
  // and with overwrite) is the caller's check, once for the whole run: util/path_rules.h
  // CheckRunPaths. Without overwrite the commit still never replaces an existing output.
  PALETTIZE_RETURN_IF_ERROR(staged_.Begin(out_, StagedOutput::Kind::kFolder, overwrite));
  tmp_ = staged_.path();
  return MakeFolders(tmp_, "Data");
}

Status PackageWriter::WriterFor(const std::string& mil_file_name, BlobWriter** out) {
  std::string name;  // one writer per file, however the model spells its name
  PALETTIZE_RETURN_IF_ERROR(package_->NormalizeBlobFileName(mil_file_name, &name));
  auto& w = writers_[name];
  if (!w) {
    std::string path;
    PALETTIZE_RETURN_IF_ERROR(package_->ResolveBlobPath(name, tmp_, &path));
    PALETTIZE_RETURN_IF_ERROR(
        MakeFolders(tmp_, fs::path(path.substr(tmp_.size() + 1)).parent_path().string()));
    w = std::make_unique<BlobWriter>();
    PALETTIZE_RETURN_IF_ERROR(w->Open(path));
  }
  *out = w.get();
  return Status::OK();
}

Status PackageWriter::AppendNew(const PendingBlob& b, uint64_t* handle) {
  std::string name;
  PALETTIZE_RETURN_IF_ERROR(package_->NormalizeBlobFileName(b.file_name, &name));
  BlobWriter* w;
  PALETTIZE_RETURN_IF_ERROR(WriterFor(name, &w));
  uint64_t offset;
  PALETTIZE_RETURN_IF_ERROR(w->Append(b.blob_dtype, b.data.data(), b.data.size(), b.padding_bits, &offset));
  *handle = placed_.size();
  placed_.emplace_back(name, offset);
  return Status::OK();
}

Status PackageWriter::Finish(const spec::Model& model_in) {
  spec::Model model = model_in;
  std::vector<ConstWeight> weights;  // found only to validate every const before writing
  PALETTIZE_RETURN_IF_ERROR(FindWeights(model, &weights).WithContext(package_->model_path_));
  // Immediate values are written as they are: check them as inspect does, so that no package is
  // written that inspect would refuse (a const holding 4 values for a [3] tensor).
  for (const ConstWeight& w : weights) {
    if (w.value->has_blobfilevalue()) continue;
    TensorData data;
    PALETTIZE_RETURN_IF_ERROR(ReadTensorData(*package_, w, &data));
  }

  // New blobs are in place already; copy each input blob still referenced once (shared blobs
  // stay shared) and re-point the values.
  Status status;
  std::map<std::pair<std::string, uint64_t>, uint64_t> moved;
  ForEachProgram(model, [&](const std::string&, spec::Model&, mil::Program& program) {
    ForEachBlobValue(program, [&](mil::Value& v) {
      if (!status.ok()) return;
      auto* ref = v.mutable_blobfilevalue();
      if (ref->filename() == kPendingBlobFile) {
        if (ref->offset() >= placed_.size()) {
          status = Status::InvalidArgument("internal: new blob " + std::to_string(ref->offset()) +
                                           " does not exist");
          return;
        }
        ref->set_filename(placed_[ref->offset()].first);
        ref->set_offset(placed_[ref->offset()].second);
        return;
      }
      // The output spells each file one way, and a blob reached by two spellings is copied once.
      std::string name;
      status = package_->NormalizeBlobFileName(ref->filename(), &name);
      if (!status.ok()) return;
      ref->set_filename(name);
      auto key = std::make_pair(name, ref->offset());
      auto done = moved.find(key);
      if (done != moved.end()) {
        ref->set_offset(done->second);
        return;
      }
      const BlobReader* reader;
      status = package_->OpenWeightFile(ref->filename(), &reader);
      if (!status.ok()) return;
      BlobView blob;
      status = reader->Read(ref->offset(), &blob);
      if (!status.ok()) return;
      const std::string where = reader->name() + ": blob at offset " + std::to_string(ref->offset());
      if (v.has_type()) {
        TensorShape shape;
        status = ParseTensorType(v.type(), &shape);
        if (!status.ok()) {
          status = status.WithContext(where);
          return;
        }
        status = CheckBlobMatches(blob, shape, "its value's type", where);
        if (!status.ok()) return;
      }
      const DTypeInfo* info = FindDTypeByBlobCode(blob.blob_dtype);
      uint64_t padding = info->bits < 8 ? blob.padding_bits : 0;
      BlobWriter* w;
      status = WriterFor(ref->filename(), &w);
      if (!status.ok()) return;
      uint64_t offset;
      status = w->Append(blob.blob_dtype, blob.data, blob.size, padding, &offset);
      if (!status.ok()) return;
      moved[key] = offset;
      ref->set_offset(offset);
    });
  });
  PALETTIZE_RETURN_IF_ERROR(status);
  for (auto& [name, writer] : writers_) PALETTIZE_RETURN_IF_ERROR(writer->Finish());

  // Every other manifest item is copied through; the model and the weight files are ours.
  std::set<fs::path> skip = {fs::path(package_->model_path_).lexically_normal()};
  for (const auto& [name, writer] : writers_) {
    std::string in_path;
    PALETTIZE_RETURN_IF_ERROR(package_->ResolveBlobPath(name, package_->path_, &in_path));
    skip.insert(fs::path(in_path).lexically_normal());
  }
  const fs::path data_out = fs::path(tmp_) / "Data";
  auto skipped = [&](const std::string& shown) { return skip.count(fs::path(shown).lexically_normal()) > 0; };
  for (const ManifestItem& item : package_->manifest_.items()) {
    PALETTIZE_RETURN_IF_ERROR(MakeFolders(data_out.string(), Dirname(item.path)));
    PALETTIZE_RETURN_IF_ERROR(
        CopyUnder(package_->path_, JoinPath("Data", item.path), (data_out / item.path).string(), skipped));
  }

  std::string bytes;
  if (!SerializeDeterministic(model, &bytes))
    return Status::InvalidInput(package_->model_path_ + ": model cannot be serialized");
  PALETTIZE_RETURN_IF_ERROR(MakeFolders(data_out.string(), Dirname(package_->model_rel_)));
  PALETTIZE_RETURN_IF_ERROR(WriteNewFile((data_out / package_->model_rel_).string(), bytes));
  return WriteNewFile(JoinPath(tmp_, "Manifest.json"), package_->manifest_.Serialize());
}

Status PackageWriter::Commit(const std::vector<StagedOutput*>& also) {
  std::vector<StagedOutput*> outputs = {&staged_};
  for (StagedOutput* o : also)
    if (o != nullptr) outputs.push_back(o);
  return CommitStaged(outputs);
}

}  // namespace palettize
