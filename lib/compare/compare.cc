// Compare: each const weight of the original against what the compressed package holds under the
// same program, function and name, a const or the last op of a constexpr chain (decompressed by
// decompress/constexpr_eval.h, as `palettize decompress` does).
#include "palettize/compare.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "MIL.pb.h"
#include "decompress/constexpr_eval.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "mil/weights.h"
#include "package/package.h"
#include "package/tensor_reader.h"
#include "util/guard.h"

namespace palettize {

namespace {

// The ops of one function of the compressed package that can stand for a weight.
struct FunctionOps {
  std::map<std::string, mil::Operation*> producers;  // every op, by output name
  std::set<std::string> chain_inputs;
  std::map<std::string, mil::Operation*> by_name;  // consts and constexpr ops, by op name
};

using FunctionKey = std::pair<std::string, std::string>;  // program path, function name

// The ops that can stand for a weight: consts and constexpr ops (the evaluator refuses the kinds
// it does not know, with an error naming the op).
bool IsCandidate(const mil::Operation& op) {
  return op.type() == "const" || op.type().rfind("constexpr_", 0) == 0;
}

// Every function of every ML Program in `model`. A function with several block specializations
// is indexed by the first (in key order) that defines a name.
std::map<FunctionKey, FunctionOps> IndexFunctions(spec::Model& model) {
  std::map<FunctionKey, FunctionOps> index;
  ForEachProgram(model, [&](const std::string& path, spec::Model&, mil::Program& program) {
    auto& functions = *program.mutable_functions();
    for (const std::string& fname : SortedKeys(functions)) {
      FunctionOps& f = index[{path, fname}];
      auto& blocks = *functions.at(fname).mutable_block_specializations();
      for (const std::string& opset : SortedKeys(blocks)) {
        std::map<std::string, mil::Operation*> producers;
        IndexProducers(blocks.at(opset), &producers, &f.chain_inputs);
        for (const auto& [output, op] : producers) {
          f.producers.emplace(output, op);
          if (IsCandidate(*op)) f.by_name.emplace(OpName(*op), op);
        }
      }
    }
  });
  return index;
}

// The constexpr_lut_to_dense of the chain ending at `op` (following the data input of the
// shift/scale ops after it), or nullptr when the chain has none. `depth` stops a chain that
// feeds itself (the evaluator then refuses it, naming the op).
const mil::Operation* ChainLut(const mil::Operation& op, const FunctionOps& f, int depth = 0) {
  if (op.type() == "constexpr_lut_to_dense") return &op;
  if (depth > 16) return nullptr;
  auto in = op.inputs().find("data");
  if (in == op.inputs().end() || in->second.arguments_size() != 1 ||
      in->second.arguments(0).binding_case() != mil::Argument::Binding::kName)
    return nullptr;
  auto p = f.producers.find(in->second.arguments(0).name());
  return p != f.producers.end() && IsDecompressible(*p->second) ? ChainLut(*p->second, f, depth + 1)
                                                                : nullptr;
}

// log2 of the table length of constexpr_lut_to_dense `lut`; 0 when that is not a power of two.
int LutNbits(const mil::Operation& lut, const FunctionOps& f) {
  const mil::ValueType* type = nullptr;
  if (auto a = lut.attributes().find("lut"); a != lut.attributes().end()) type = &a->second.type();
  if (auto in = lut.inputs().find("lut");
      type == nullptr && in != lut.inputs().end() && in->second.arguments_size() == 1) {
    const auto& b = in->second.arguments(0);
    if (b.binding_case() == mil::Argument::Binding::kValue) {
      type = &b.value().type();
    } else if (auto p = f.producers.find(b.name());
               p != f.producers.end() && p->second->outputs_size() == 1) {
      type = &p->second->outputs(0).type();
    }
  }
  TensorShape shape;
  if (type == nullptr || !ParseTensorType(*type, &shape).ok()) return 0;
  // iOS16: a flat table (with a `shape` attribute); iOS18: [groups.., 2^nbits, cluster_dim].
  const uint64_t k = lut.attributes().count("shape") ? shape.elements
                     : shape.dims.size() >= 2        ? shape.dims[shape.dims.size() - 2]
                                                     : 0;
  int nbits = 0;
  while (nbits < 63 && (uint64_t(1) << nbits) < k) ++nbits;
  return (uint64_t(1) << nbits) == k ? nbits : 0;
}

// Accumulates the error of y against x. NaN against NaN counts as equal, as a bitwise copy is.
void Measure(const std::vector<double>& x, const std::vector<double>& y, WeightComparison* c) {
  for (size_t i = 0; i < x.size(); ++i) {
    c->signal += x[i] * x[i];
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    const double d = x[i] - y[i];
    c->sse += d * d;
    const double e = std::fabs(d);
    if (!(e <= c->max_abs_error)) c->max_abs_error = e;  // NaN wins, as numpy's max
  }
  c->snr_db = c->sse == 0 ? INFINITY : 10.0 * std::log10(c->signal / c->sse);
}

std::vector<double> AsDoubles(const TensorData& data, const TensorShape& shape) {
  std::vector<double> v(shape.elements);
  for (uint64_t i = 0; i < shape.elements; ++i) v[i] = ElementAsDouble(data.data, shape.mil_type, i);
  return v;
}

class Comparer {
 public:
  Comparer(Package& original, Package& compressed) : original_(original), compressed_(compressed) {}

  Status Run(CompareReport* report) {
    std::vector<ConstWeight> weights;
    PALETTIZE_RETURN_IF_ERROR(FindWeights(original_.model(), &weights).WithContext(original_.model_path()));
    index_ = IndexFunctions(compressed_.model());
    for (const ConstWeight& w : weights) {
      WeightComparison c;
      SetWeightIdentity(w, &c);
      PALETTIZE_RETURN_IF_ERROR(CompareWeight(w, &c));
      report->weights.push_back(std::move(c));
    }
    return Status::OK();
  }

 private:
  Status CompareWeight(const ConstWeight& w, WeightComparison* c) {
    auto f = index_.find({w.program, w.function});
    const mil::Operation* op = nullptr;
    if (f != index_.end()) {
      // The last op of a chain takes the const's output name as well as its name: prefer the op
      // producing that output, should another op share the name.
      auto by_output = f->second.producers.find(w.output);
      auto by_name = f->second.by_name.find(w.name);
      if (by_output != f->second.producers.end() && OpName(*by_output->second) == w.name &&
          IsCandidate(*by_output->second))
        op = by_output->second;
      else if (by_name != f->second.by_name.end())
        op = by_name->second;
    }
    if (op == nullptr) {
      c->state = WeightState::kMissing;
      c->problem = "no const or constexpr op of this name";
      return Status::OK();
    }
    TensorData original;
    PALETTIZE_RETURN_IF_ERROR(ReadTensorData(original_, w, &original));
    const std::string what = op->type() + " '" + w.name + "'";
    if (op->type() == "const") {
      c->state = WeightState::kUnchanged;
      TensorShape shape;
      if (op->outputs_size() != 1 || !ParseTensorType(op->outputs(0).type(), &shape).ok() ||
          !SameType(w.shape, shape, c))
        return Status::OK();
      auto val = op->attributes().find("val");
      if (val == op->attributes().end())
        return Status::InvalidInput(compressed_.model_path() + ": " + what + ": missing attribute 'val'");
      TensorData data;
      PALETTIZE_RETURN_IF_ERROR(ReadValueData(compressed_, val->second, shape, what, &data));
      if (shape.mil_type == mil::STRING) {
        if (data.strings != original.strings) Mismatch("string values differ", c);
        return Status::OK();
      }
      Measure(AsDoubles(original, w.shape), AsDoubles(data, shape), c);
      return Status::OK();
    }
    const mil::Operation* lut = ChainLut(*op, f->second);
    c->state = lut ? WeightState::kPalettized : WeightState::kConstexpr;
    if (lut) c->nbits = LutNbits(*lut, f->second);
    DenseTensor dense;
    ConstexprEvaluator eval(compressed_, f->second.producers);
    PALETTIZE_RETURN_IF_ERROR(eval.EvalOp(*op, &dense));
    if (!SameType(w.shape, dense.shape, c)) return Status::OK();
    Measure(AsDoubles(original, w.shape), dense.v, c);
    return Status::OK();
  }

  static void Mismatch(const std::string& problem, WeightComparison* c) {
    c->state = WeightState::kMismatch;
    c->problem = problem;
    c->nbits = 0;
  }

  // False (and the weight marked mismatched) when the compressed value's type differs.
  static bool SameType(const TensorShape& original, const TensorShape& compressed, WeightComparison* c) {
    if (original.mil_type == compressed.mil_type && original.dims == compressed.dims) return true;
    Mismatch(DescribeShape(compressed) + ", not " + DescribeShape(original) + " as in the original", c);
    return false;
  }

  Package& original_;
  Package& compressed_;
  std::map<FunctionKey, FunctionOps> index_;
};

std::string WeightPath(const WeightComparison& c) {
  return (c.program.empty() ? "" : c.program + "/") + c.function + "/" + c.name;
}

}  // namespace

const char* WeightStateName(WeightState state) {
  switch (state) {
    case WeightState::kPalettized: return "palettized";
    case WeightState::kConstexpr: return "constexpr";
    case WeightState::kUnchanged: return "unchanged";
    case WeightState::kMissing: return "missing";
    case WeightState::kMismatch: return "mismatch";
  }
  return "?";
}

static Status CompareUnguarded(const std::string& original, const std::string& compressed,
                               CompareReport* report) {
  Package a, b;
  PALETTIZE_RETURN_IF_ERROR(a.Load(original));
  PALETTIZE_RETURN_IF_ERROR(b.Load(compressed));
  CompareReport r;
  r.original = original;
  r.compressed = compressed;
  PALETTIZE_RETURN_IF_ERROR(Comparer(a, b).Run(&r));
  r.min_snr_db = INFINITY;
  for (const WeightComparison& c : r.weights) {
    switch (c.state) {
      case WeightState::kPalettized: ++r.palettized; break;
      case WeightState::kConstexpr: ++r.constexpr_other; break;
      case WeightState::kUnchanged: ++r.unchanged; break;
      case WeightState::kMissing: ++r.missing; continue;
      case WeightState::kMismatch: ++r.mismatched; continue;
    }
    r.signal += c.signal;
    r.sse += c.sse;
    if (!(c.max_abs_error <= r.max_abs_error)) r.max_abs_error = c.max_abs_error;
    if (!(c.snr_db >= r.min_snr_db)) r.min_snr_db = c.snr_db;
  }
  r.snr_db = r.sse == 0 ? INFINITY : 10.0 * std::log10(r.signal / r.sse);
  *report = std::move(r);
  return Status::OK();
}

Status Compare(const std::string& original, const std::string& compressed, CompareReport* report) {
  return Guarded(compressed, [&] { return CompareUnguarded(original, compressed, report); });
}

std::string CheckMinSnr(const CompareReport& report, double min_snr_db) {
  size_t compared = 0, below = 0;
  const WeightComparison* worst = nullptr;
  for (const WeightComparison& c : report.weights) {
    if (c.state == WeightState::kMissing || c.state == WeightState::kMismatch) continue;
    ++compared;
    if (c.snr_db >= min_snr_db) continue;  // NaN fails
    ++below;
    if (worst == nullptr || !(c.snr_db >= worst->snr_db)) worst = &c;
  }
  if (below == 0) return "";
  char db[64], threshold[64];
  std::snprintf(db, sizeof db, "%.2f dB", worst->snr_db);
  std::snprintf(threshold, sizeof threshold, "%g", min_snr_db);
  return report.compressed + ": " + std::to_string(below) + " of " + std::to_string(compared) + " weight" +
         (compared == 1 ? "" : "s") + (below == 1 ? " has" : " have") + " an SNR below " + threshold +
         " dB; the worst, " + WeightPath(*worst) + ", has " + db;
}

Status CheckComparable(const CompareReport& report) {
  const size_t bad = report.missing + report.mismatched;
  if (bad == 0) return Status::OK();
  for (const WeightComparison& c : report.weights) {
    if (c.state != WeightState::kMissing && c.state != WeightState::kMismatch) continue;
    std::string msg =
        report.compressed + ": weight " + WeightPath(c) + ": " + WeightStateName(c.state) + ": " + c.problem;
    if (bad > 1) msg += " (and " + std::to_string(bad - 1) + " more missing or mismatched)";
    return Status::InvalidInput(msg);
  }
  return Status::OK();
}

}  // namespace palettize
