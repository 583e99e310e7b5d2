// Fuzzes the evaluator (lib/eval, `palettize eval`): the input is a package archive
// (fuzz_package.h) whose record `inputs.npz`, when there is one, is the --inputs file rather than
// part of the package; without it every input is generated (seed 0). The package's main function
// runs with the fuzz limits below, so that every input runs in bounded memory and time: a program
// that asks for more fails with a Status, as it would with the ordinary limits at a larger size.
// Checked: an evaluation that succeeds wrote an outputs .npz that reads back with one array per
// output, each of the shape the report gives.
#include <vector>

#include "eval/limits.h"
#include "fuzz_package.h"
#include "fuzz_targets.h"
#include "npy/npz.h"
#include "palettize/eval.h"
#include "util/file.h"

namespace palettize {

namespace {

constexpr char kInputsRecord[] = "inputs.npz";

void UseFuzzLimits() {
  eval::EvalLimits limits;
  limits.max_tensor_elements = uint64_t(1) << 20;  // 4 MiB of float32; a matmul at most 2^30 MACs
  limits.max_loop_iterations = 1000;
  eval::SetEvalLimits(limits);
}

}  // namespace

int FuzzEval(const uint8_t* data, size_t size) {
  UseFuzzLimits();
  ArchiveFiles files = ParseArchive(data, size);
  ArchiveFiles package;
  const std::string inputs = JoinPath(FuzzScratchDir(), "inputs.npz");
  const std::string outputs = JoinPath(FuzzScratchDir(), "outputs.npz");
  RemoveTree(inputs);
  RemoveTree(outputs);
  bool has_inputs = false;
  for (auto& [path, bytes] : files) {
    if (path == kInputsRecord) {
      has_inputs = WriteStringToFile(inputs, bytes).ok();
    } else {
      package.emplace_back(path, std::move(bytes));
    }
  }
  AddDefaultManifest(&package);
  const std::string dir = JoinPath(FuzzScratchDir(), "in.mlpackage");
  WriteArchive(package, dir);

  EvalOptions options;
  if (has_inputs) options.inputs_path = inputs;
  options.outputs_path = outputs;
  options.overwrite = true;
  EvalReport report;
  if (!Eval(dir, options, &report).ok()) return 0;
  std::vector<NpyArray> arrays;
  std::vector<std::vector<uint8_t>> inflated;
  std::string bytes;
  if (!ReadFileToString(outputs, &bytes).ok()) __builtin_trap();  // said it wrote the outputs
  if (!ParseNpz(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), outputs, &arrays, &inflated)
           .ok())
    __builtin_trap();
  if (arrays.size() != report.outputs.size()) __builtin_trap();
  for (size_t k = 0; k < arrays.size(); ++k) {
    const std::vector<int64_t>& want = report.outputs[k].shape;
    if (arrays[k].shape.size() != want.size()) __builtin_trap();
    for (size_t d = 0; d < want.size(); ++d)
      if (int64_t(arrays[k].shape[d]) != want[d]) __builtin_trap();
  }
  return 0;
}

}  // namespace palettize
