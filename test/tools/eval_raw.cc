// eval_raw MODEL DIR: runs the main function of MODEL with lib/eval, each input read from
// DIR/<name>.f32 (little-endian float32, the declared shape's element count, converted to the
// declared dtype), and writes each output to DIR/out_<name>.f32 as float32, for
// test/eval/test_torch_eval_ops.py. Raw files keep that test independent of the .npz reader.
#include <cstdio>
#include <fstream>
#include <map>

#include "eval/interpreter.h"
#include "eval/op_context.h"
#include "package/package.h"

using namespace palettize;

static int Fail(const std::string& message) {
  std::fprintf(stderr, "eval_raw: %s\n", message.c_str());
  return 2;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: eval_raw MODEL.mlpackage DIR\n");
    return 1;
  }
  const std::string dir = argv[2];
  Package package;
  Status st = package.Load(argv[1]);
  if (!st.ok()) return Fail(st.message());
  std::vector<std::pair<std::string, const mil::ValueType*>> declared;
  st = eval::Interpreter::FunctionInputs(package, "main", &declared);
  if (!st.ok()) return Fail(st.message());
  std::map<std::string, eval::Tensor> inputs;
  for (const auto& [name, type] : declared) {
    const eval::DeclaredType d = eval::ParseDeclaredType(*type);
    eval::Tensor t(d.dtype, d.dims);
    std::vector<float> v(t.size());
    std::ifstream f(dir + "/" + name + ".f32", std::ios::binary);
    if (!f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float))))
      return Fail(dir + "/" + name + ".f32: cannot read " + std::to_string(v.size()) + " floats");
    for (size_t k = 0; k < v.size(); ++k) t.set(k, v[k]);
    t.RoundToDType();
    inputs[name] = std::move(t);
  }
  eval::Interpreter interp(package);
  std::map<std::string, eval::Tensor> outputs;
  st = interp.Run("main", std::move(inputs), &outputs);
  if (!st.ok()) return Fail(st.message());
  for (const auto& [name, t] : outputs) {
    std::vector<float> v(t.size());
    for (size_t k = 0; k < v.size(); ++k) v[k] = float(t.at(k));
    std::ofstream f(dir + "/out_" + name + ".f32", std::ios::binary);
    if (!f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float))))
      return Fail(dir + "/out_" + name + ".f32: cannot write");
  }
  return 0;
}
