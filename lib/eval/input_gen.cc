#include "eval/input_gen.h"

#include <cmath>

#include "MIL.pb.h"
#include "Model.pb.h"
#include "eval/limits.h"
#include "eval/op_context.h"

namespace palettize::eval {

namespace {

namespace MT = CoreML::Specification::MILSpec;

// splitmix64: a tiny, fully specified generator.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double Uniform() { return double(Next() >> 11) * 0x1p-53; }  // [0, 1)
  double Normal() {                                            // Box-Muller, one value per call
    const double u1 = 1.0 - Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
};

uint64_t NameHash(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

Status GenerateInput(const std::string& name, const mil::ValueType& type, uint64_t seed, Tensor* out) {
  const DeclaredType d = ParseDeclaredType(type);
  if (!d.tensor) return Status::InvalidArgument("input '" + name + "': not a tensor; give it in --inputs");
  std::vector<int64_t> shape = d.dims;
  for (size_t k = 0; k < shape.size(); ++k)
    if (shape[k] < 0)
      return Status::InvalidArgument("input '" + name + "': dimension " + std::to_string(k) +
                                     " is not fixed by the model; give the input in --inputs");
  try {
    CheckTensorShape(shape);
  } catch (const TensorLimitError& e) {
    return Status::InvalidArgument("input '" + name + "': " + e.what());
  }
  Tensor t(d.dtype, shape);
  if (t.is_string())
    return Status::InvalidArgument("input '" + name + "': a string input; give it in --inputs");
  Rng rng{seed ^ NameHash(name)};
  for (size_t k = 0; k < t.size(); ++k) {
    if (d.dtype == MT::BOOL)
      t.set(k, double(rng.Next() >> 63));
    else if (!t.is_float())
      t.set(k, double(rng.Next() % 10));
    else
      t.set(k, rng.Normal());
  }
  t.RoundToDType();
  *out = std::move(t);
  return Status::OK();
}

}  // namespace palettize::eval
