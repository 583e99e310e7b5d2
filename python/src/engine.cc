// palettize.torch's extension module `palettize._engine`: one call into the library per tensor
// (palettize/tensor.h), with the GIL released while it clusters. Only the public API is used, as
// by the CLI (apps/palettize); the Python side (python/palettize/torch/) resolves the configs.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>

#include "palettize/config.h"
#include "palettize/tensor.h"

namespace py = pybind11;

namespace {

// A module config as the Python side sends it: a dict of the resolved fields (palettize/config.h),
// keyed as coremltools.optimize.torch names them.
palettize::PalettizeConfig ConfigFromDict(const py::dict& d) {
  palettize::PalettizeConfig c;
  c.mode = palettize::PalettizeMode::kKMeans;
  c.nbits = d["n_bits"].cast<int>();
  const auto granularity = d["granularity"].cast<std::string>();
  if (granularity == "per_grouped_channel") {
    c.granularity = palettize::Granularity::kPerGroupedChannel;
    c.group_size = d["group_size"].cast<int64_t>();
  } else if (granularity != "per_tensor") {
    throw std::invalid_argument("granularity: '" + granularity +
                                "' is not per_tensor or per_grouped_channel");
  }
  c.channel_axis = d["channel_axis"].cast<int64_t>();
  c.cluster_dim = d["cluster_dim"].cast<int64_t>();
  c.enable_per_channel_scale = d["enable_per_channel_scale"].cast<bool>();
  const auto lut = d["lut_dtype"].cast<std::string>();
  if (lut == "int8") {
    c.lut_dtype = palettize::LutDType::kInt8;
  } else if (lut == "uint8") {
    c.lut_dtype = palettize::LutDType::kUInt8;
  } else if (!lut.empty()) {
    throw std::invalid_argument("lut_dtype: '" + lut + "' is not int8 or uint8");
  }
  c.weight_threshold = d["weight_threshold"].cast<int64_t>();
  return c;
}

// Returns (palettized, reason, decoded bytes, nbits, tables, snr_db); raises ValueError with the
// library's message on an error.
py::tuple PalettizeTensor(const std::string& name, const std::string& module_type, const std::string& dtype,
                          const py::buffer& data, const py::dict& config, const py::object& sensitivity,
                          bool normalize) {
  const py::buffer_info info = data.request();
  palettize::TensorInput in;
  in.name = name;
  in.module_type = module_type;
  in.dtype = dtype;
  for (py::ssize_t d : info.shape) in.shape.push_back(uint64_t(d));
  in.data = info.ptr;
  // Row-major and dense: the library reads the elements in order.
  py::ssize_t stride = info.itemsize;
  for (py::ssize_t d = info.ndim - 1; d >= 0; --d) {
    if (info.shape[d] > 1 && info.strides[d] != stride)
      throw std::invalid_argument(name + ": the weight's buffer is not C-contiguous");
    stride *= info.shape[d];
  }
  py::buffer_info sens_info;
  if (!sensitivity.is_none()) {
    sens_info = sensitivity.cast<py::buffer>().request();
    if (sens_info.format != py::format_descriptor<float>::format() || sens_info.size != info.size)
      throw std::invalid_argument(name + ": the sensitivity must be float32 with the weight's element count");
    in.sensitivity = static_cast<const float*>(sens_info.ptr);
    in.sensitivity_normalize = normalize;
  }
  const palettize::PalettizeConfig c = ConfigFromDict(config);
  palettize::TensorOutput out;
  palettize::Status status;
  {
    py::gil_scoped_release release;
    status = palettize::PalettizeTensor(in, c, &out);
  }
  if (!status.ok()) throw std::invalid_argument(status.message());
  return py::make_tuple(out.palettized, out.reason, py::bytes(out.decoded), out.nbits, out.tables,
                        out.snr_db);
}

}  // namespace

PYBIND11_MODULE(_engine, m) {
  m.doc() = "palettize's C++ library, one tensor at a time (palettize/tensor.h)";
  m.def("palettize_tensor", &PalettizeTensor, py::arg("name"), py::arg("module_type"), py::arg("dtype"),
        py::arg("data"), py::arg("config"), py::arg("sensitivity") = py::none(),
        py::arg("normalize") = false);
}
