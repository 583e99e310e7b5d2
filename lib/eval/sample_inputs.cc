// The inputs of one run (eval/sample_inputs.h).
#include "eval/sample_inputs.h"

#include <algorithm>
#include <filesystem>

#include "eval/input_gen.h"
#include "eval/interpreter.h"
#include "eval/npz_io.h"
#include "eval/op_context.h"
#include "mil/dtype.h"

namespace palettize::eval {

Status ListSamples(const std::vector<std::string>& inputs, const std::string& what,
                   std::vector<std::string>* samples) {
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(in, ec)) {
      samples->push_back(in);  // a missing or unreadable file is NpzFile::Open's error
      continue;
    }
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(in, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npz") == 0) names.push_back(name);
    }
    if (ec) return Status::IOError(in + ": cannot list the folder: " + ec.message());
    if (names.empty()) return Status::InvalidArgument(in + ": a folder of " + what + " holds no .npz file");
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) samples->push_back((std::filesystem::path(in) / name).string());
  }
  return Status::OK();
}

Status CheckInputArrays(const NpzFile& npz, const std::string& file, const std::string& function,
                        const std::vector<std::pair<std::string, const mil::ValueType*>>& declared) {
  for (const NpyArray& a : npz.arrays()) {
    bool found = false;
    std::string names;
    for (const auto& d : declared) {
      found = found || d.first == a.name;
      names += (names.empty() ? "" : ", ") + d.first;
    }
    if (!found)
      return Status::InvalidArgument(file + ": array '" + a.name + "' is not an input of function '" +
                                     function + "' (its inputs: " + names + ")");
  }
  return Status::OK();
}

Status ReadOrGenerateInput(const std::string& name, const mil::ValueType& type,
                           const DescribedShape* described, const NpzFile* npz, const std::string& file,
                           uint64_t seed, Tensor* out, bool* generated) {
  const NpyArray* given = npz == nullptr ? nullptr : npz->Find(name);
  *generated = given == nullptr;
  if (given == nullptr)
    return GenerateInput(name, described ? WithDefaultShape(type, *described) : type, seed, out);
  PALETTIZE_RETURN_IF_ERROR(TensorFromNpy(*given, file, type, out));
  std::string allowed;
  if (described != nullptr && !ShapeAllowed(*described, out->shape(), &allowed))
    return Status::InvalidArgument(file + ": input '" + name + "': " + DescribeTensor(*out) +
                                   ", the model takes " + DTypeName(out->dtype()) + " " + allowed);
  return Status::OK();
}

Status SampleInputs(const Package& package, const std::string& function, const std::string& npz_path,
                    uint64_t seed, std::map<std::string, Tensor>* inputs,
                    std::vector<std::string>* generated) {
  inputs->clear();
  if (generated) generated->clear();
  std::vector<std::pair<std::string, const mil::ValueType*>> declared;
  PALETTIZE_RETURN_IF_ERROR(Interpreter::FunctionInputs(package, function, &declared));
  NpzFile npz;
  if (!npz_path.empty()) {
    PALETTIZE_RETURN_IF_ERROR(npz.Open(npz_path));
    PALETTIZE_RETURN_IF_ERROR(CheckInputArrays(npz, npz_path, function, declared));
  }
  std::map<std::string, DescribedShape> described;
  PALETTIZE_RETURN_IF_ERROR(DescribedShapes(package, function, declared, &described));
  for (const auto& [name, type] : declared) {
    Tensor t;
    bool made = false;
    auto d = described.find(name);
    PALETTIZE_RETURN_IF_ERROR(ReadOrGenerateInput(name, *type, d == described.end() ? nullptr : &d->second,
                                                  npz_path.empty() ? nullptr : &npz, npz_path, seed, &t,
                                                  &made));
    if (made && generated) generated->push_back(name);
    (*inputs)[name] = std::move(t);
  }
  return Status::OK();
}

}  // namespace palettize::eval
