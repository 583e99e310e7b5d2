#include "package/tensor_reader.h"

namespace palettize {

Status ReadValueData(Package& package, const mil::Value& value, const TensorShape& shape,
                     const std::string& what, TensorData* out) {
  *out = TensorData();
  if (value.has_immediatevalue())
    return ReadImmediateData(value, shape, out).WithContext(package.model_path() + ": " + what);
  if (!value.has_blobfilevalue())
    return Status::InvalidInput(package.model_path() + ": " + what + ": no value");
  const auto& ref = value.blobfilevalue();
  const BlobReader* reader;
  PALETTIZE_RETURN_IF_ERROR(package.OpenWeightFile(ref.filename(), &reader));
  BlobView blob;
  PALETTIZE_RETURN_IF_ERROR(reader->Read(ref.offset(), &blob));
  PALETTIZE_RETURN_IF_ERROR(CheckBlobMatches(
      blob, shape, what, reader->name() + ": blob at offset " + std::to_string(ref.offset())));
  out->data = blob.data;
  out->size = blob.size;
  return Status::OK();
}

Status ReadTensorData(Package& package, const ConstWeight& w, TensorData* out) {
  // Blob errors name the weight file and blob; immediate-value errors name where the const is.
  std::string what = "const '" + w.name + "'";
  if (w.value->has_immediatevalue())
    what =
        (w.program.empty() ? "" : "program " + w.program + ": ") + "function '" + w.function + "': " + what;
  return ReadValueData(package, *w.value, w.shape, what, out);
}

}  // namespace palettize
