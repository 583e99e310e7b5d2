#include "package/package.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "blob/blob_writer.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "mil/weights.h"

namespace fs = std::filesystem;

namespace palettize {

namespace {

constexpr char kModelPathPrefix[] = "@model_path/";

// Serializes with sorted map keys, so the same model always gives the same bytes.
bool SerializeDeterministic(const google::protobuf::Message& m, std::string* out) {
  out->clear();
  google::protobuf::io::StringOutputStream raw(out);
  google::protobuf::io::CodedOutputStream coded(&raw);
  coded.SetSerializationDeterministic(true);
  return m.SerializeToCodedStream(&coded) && !coded.HadError();
}

// Copies `from` to `to` recursively, leaving out the files in `skip` (paths under `from`).
Status CopyExcept(const fs::path& from, const fs::path& to, const std::set<fs::path>& skip) {
  std::error_code ec;
  if (skip.count(from.lexically_normal())) return Status::OK();
  if (!fs::is_directory(from, ec)) return CopyTree(from.string(), to.string());
  fs::create_directories(to, ec);
  if (ec) return Status::IOError(to.string() + ": cannot create folder: " + ec.message());
  std::vector<fs::path> children;
  for (const auto& entry : fs::directory_iterator(from, ec)) children.push_back(entry.path());
  if (ec) return Status::IOError(from.string() + ": cannot list: " + ec.message());
  std::sort(children.begin(), children.end());
  for (const fs::path& child : children)
    PALETTIZE_RETURN_IF_ERROR(CopyExcept(child, to / child.filename(), skip));
  return Status::OK();
}

}  // namespace

Status Package::Load(const std::string& path) {
  path_ = path;
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  if (!IsDirectory(path_)) {
    if (!PathExists(path_)) return Status::IOError(path_ + ": no such package");
    return Status::InvalidInput(path_ + ": not an .mlpackage folder");
  }
  const std::string manifest_path = JoinPath(path_, "Manifest.json");
  if (!PathExists(manifest_path)) return Status::InvalidInput(manifest_path + ": missing");
  std::string text;
  PALETTIZE_RETURN_IF_ERROR(ReadFileToString(manifest_path, &text));
  PALETTIZE_RETURN_IF_ERROR(manifest_.Parse(text, manifest_path));

  const std::string data = JoinPath(path_, "Data");
  for (const ManifestItem& item : manifest_.items()) {
    if (!PathExists(JoinPath(data, item.path)))
      return Status::InvalidInput(manifest_path + ": itemInfoEntries." + item.id + ".path: '" +
                                  item.path + "' does not exist in the package");
  }
  model_rel_ = manifest_.root().path;
  model_path_ = JoinPath(data, model_rel_);
  std::string bytes;
  PALETTIZE_RETURN_IF_ERROR(ReadFileToString(model_path_, &bytes));
  if (!model_.ParseFromString(bytes))
    return Status::InvalidInput(model_path_ + ": not a valid Core ML model (protobuf parse failed)");
  return Status::OK();
}

Status Package::ResolveBlobPath(const std::string& mil_file_name, const std::string& package_root,
                                std::string* out) const {
  const std::string prefix = kModelPathPrefix;
  if (mil_file_name.compare(0, prefix.size(), prefix) != 0)
    return Status::InvalidInput(model_path_ + ": blob file name '" + mil_file_name +
                                "' does not start with " + prefix);
  std::string rel = mil_file_name.substr(prefix.size());
  if (rel.empty() || rel.find("..") != std::string::npos || rel[0] == '/')
    return Status::InvalidInput(model_path_ + ": blob file name '" + mil_file_name +
                                "' leaves the package");
  *out = JoinPath(JoinPath(JoinPath(package_root, "Data"), Dirname(model_rel_)), rel);
  return Status::OK();
}

Status Package::OpenWeightFile(const std::string& mil_file_name, const BlobReader** reader) {
  auto it = weight_files_.find(mil_file_name);
  if (it == weight_files_.end()) {
    std::string path;
    PALETTIZE_RETURN_IF_ERROR(ResolveBlobPath(mil_file_name, path_, &path));
    auto wf = std::make_unique<WeightFile>();
    Status st = wf->file.Open(path);
    if (!st.ok()) return st.code() == Status::Code::kIOError && !PathExists(path)
                             ? Status::InvalidInput(path + ": missing (named by " + model_path_ + ")")
                             : st;
    PALETTIZE_RETURN_IF_ERROR(wf->reader.Open(wf->file.data(), wf->file.size(), path));
    it = weight_files_.emplace(mil_file_name, std::move(wf)).first;
  }
  *reader = &it->second->reader;
  return Status::OK();
}

Status Package::Save(const spec::Model& model, const std::string& out_path, bool overwrite,
                     const std::vector<PendingBlob>& pending) {
  std::string out = out_path;
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  std::error_code ec;
  if (PathExists(out)) {
    if (fs::equivalent(out, path_, ec))
      return Status::InvalidArgument(out + ": is the input package; write to another path");
    if (!overwrite) return Status::InvalidArgument(out + ": already exists");
  }
  const std::string tmp = out + ".partial-" + std::to_string(getpid());
  RemoveTree(tmp);
  Status st = WriteContents(model, tmp, pending);
  if (st.ok()) {
    std::string old;
    if (PathExists(out)) {
      old = out + ".old-" + std::to_string(getpid());
      fs::rename(out, old, ec);
      if (ec) st = Status::IOError(out + ": cannot replace: " + ec.message());
    }
    if (st.ok()) {
      fs::rename(tmp, out, ec);
      if (ec) {
        st = Status::IOError(out + ": cannot rename " + tmp + " into place: " + ec.message());
        if (!old.empty()) fs::rename(old, out, ec);  // put the previous output back
      } else if (!old.empty()) {
        RemoveTree(old);
      }
    }
  }
  if (!st.ok()) RemoveTree(tmp);
  return st;
}

Status Package::WriteContents(const spec::Model& model_in, const std::string& root,
                              const std::vector<PendingBlob>& pending) {
  spec::Model model = model_in;
  std::vector<ConstWeight> weights;  // found only to validate every const before writing
  PALETTIZE_RETURN_IF_ERROR(FindWeights(model, &weights).WithContext(model_path_));
  std::error_code ec;
  fs::create_directories(JoinPath(root, "Data"), ec);
  if (ec) return Status::IOError(root + ": cannot create folder: " + ec.message());

  // Which weight files the programs refer to: each is written afresh, the rest copied through.
  std::map<std::string, std::unique_ptr<BlobWriter>> writers;
  Status status;
  ForEachProgram(model, [&](const std::string&, spec::Model&, mil::Program& program) {
    ForEachBlobValue(program, [&](mil::Value& v) {
      if (v.blobfilevalue().filename() != kPendingBlobFile) writers[v.blobfilevalue().filename()];
    });
  });
  for (const PendingBlob& b : pending) writers[b.file_name];
  std::set<fs::path> skip = {fs::path(model_path_).lexically_normal()};
  for (auto& [name, writer] : writers) {
    std::string in_path, out_path;
    PALETTIZE_RETURN_IF_ERROR(ResolveBlobPath(name, path_, &in_path));
    PALETTIZE_RETURN_IF_ERROR(ResolveBlobPath(name, root, &out_path));
    skip.insert(fs::path(in_path).lexically_normal());
    fs::create_directories(fs::path(out_path).parent_path(), ec);
    writer = std::make_unique<BlobWriter>();
    PALETTIZE_RETURN_IF_ERROR(writer->Open(out_path));
  }
  const fs::path data_in = fs::path(path_) / "Data";
  const fs::path data_out = fs::path(root) / "Data";
  for (const ManifestItem& item : manifest_.items())
    PALETTIZE_RETURN_IF_ERROR(CopyExcept(data_in / item.path, data_out / item.path, skip));

  // Copy each referenced blob once (shared blobs stay shared) and re-point the values.
  std::map<std::pair<std::string, uint64_t>, uint64_t> moved;
  ForEachProgram(model, [&](const std::string&, spec::Model&, mil::Program& program) {
    ForEachBlobValue(program, [&](mil::Value& v) {
      if (!status.ok()) return;
      auto* ref = v.mutable_blobfilevalue();
      if (ref->filename() == kPendingBlobFile) {
        if (ref->offset() >= pending.size()) {
          status = Status::InvalidArgument("internal: pending blob " + std::to_string(ref->offset()) + " does not exist");
          return;
        }
        const PendingBlob& b = pending[ref->offset()];
        uint64_t offset;
        status = writers.at(b.file_name)->Append(b.blob_dtype, b.data.data(), b.data.size(), b.padding_bits, &offset);
        ref->set_filename(b.file_name);
        ref->set_offset(offset);
        return;
      }
      auto key = std::make_pair(ref->filename(), ref->offset());
      auto done = moved.find(key);
      if (done != moved.end()) {
        ref->set_offset(done->second);
        return;
      }
      const BlobReader* reader;
      status = OpenWeightFile(ref->filename(), &reader);
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
      uint64_t offset;
      status = writers.at(ref->filename())->Append(blob.blob_dtype, blob.data, blob.size, padding, &offset);
      if (!status.ok()) return;
      moved[key] = offset;
      ref->set_offset(offset);
    });
  });
  PALETTIZE_RETURN_IF_ERROR(status);
  for (auto& [name, writer] : writers) PALETTIZE_RETURN_IF_ERROR(writer->Finish());

  std::string bytes;
  if (!SerializeDeterministic(model, &bytes))
    return Status::InvalidInput(model_path_ + ": model cannot be serialized");
  fs::path model_out = data_out / model_rel_;
  fs::create_directories(model_out.parent_path(), ec);
  PALETTIZE_RETURN_IF_ERROR(WriteStringToFile(model_out.string(), bytes));
  return WriteStringToFile(JoinPath(root, "Manifest.json"), manifest_.Serialize());
}

}  // namespace palettize
