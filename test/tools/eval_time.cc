// eval_time MODEL IN.npz RUNS [OUT.npz]: times the evaluator alone for scripts/bench's eval
// section. Loads MODEL once, reads every input of its main function from IN.npz, runs the
// interpreter RUNS times (each run reads the consts again, as a `palettize eval` does) and prints
// one line per run, "run K wall S cpu S" (seconds; cpu = user + system of the whole process,
// all threads), then the best of each. The outputs of the last run go to OUT.npz. Process start,
// package parsing and the .npz writing are what `palettize eval` adds to these times.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "eval/interpreter.h"
#include "eval/npz_io.h"
#include "npy/npz.h"
#include "package/package.h"

using namespace palettize;

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "eval_time: %s\n", message.c_str());
  return 2;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::fprintf(stderr, "usage: eval_time MODEL.mlpackage IN.npz RUNS [OUT.npz]\n");
    return 1;
  }
  const int runs = std::atoi(argv[3]);
  if (runs < 1) return Fail("RUNS must be >= 1");
  Package package;
  Status st = package.Load(argv[1]);
  if (!st.ok()) return Fail(st.message());
  std::vector<std::pair<std::string, const mil::ValueType*>> declared;
  st = eval::Interpreter::FunctionInputs(package, "main", &declared);
  if (!st.ok()) return Fail(st.message());
  NpzFile npz;
  st = npz.Open(argv[2]);
  if (!st.ok()) return Fail(st.message());
  std::map<std::string, eval::Tensor> inputs;
  for (const auto& [name, type] : declared) {
    const NpyArray* a = npz.Find(name);
    if (a == nullptr) return Fail(std::string(argv[2]) + ": no array '" + name + "'");
    st = eval::TensorFromNpy(*a, argv[2], *type, &inputs[name]);
    if (!st.ok()) return Fail(st.message());
  }
  double best_wall = 1e300, best_cpu = 1e300;
  std::map<std::string, eval::Tensor> outputs;
  for (int r = 0; r < runs; ++r) {
    eval::Interpreter interp(package);
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = CpuSeconds();
    st = interp.Run("main", inputs, &outputs);
    const double cpu = CpuSeconds() - c0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!st.ok()) return Fail(st.message());
    std::printf("run %d wall %.4f cpu %.4f\n", r + 1, wall, cpu);
    best_wall = std::min(best_wall, wall);
    best_cpu = std::min(best_cpu, cpu);
  }
  std::printf("best wall %.4f cpu %.4f\n", best_wall, best_cpu);
  if (argc == 5) {
    std::vector<NpyOutArray> arrays(outputs.size());
    size_t k = 0;
    for (const auto& [name, t] : outputs) {
      st = eval::TensorToNpy(name, t, argv[4], &arrays[k++]);
      if (!st.ok()) return Fail(st.message());
    }
    st = WriteNpz(argv[4], arrays, true);
    if (!st.ok()) return Fail(st.message());
  }
  return 0;
}
