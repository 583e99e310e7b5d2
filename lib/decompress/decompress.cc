// Decompress: folds every constexpr chain (evaluated by decompress/constexpr_eval.h) into a dense
// const with the name and output of the chain's last op, then drops the ops only the chains used.
#include "palettize/decompress.h"

#include <map>
#include <set>

#include "MIL.pb.h"
#include "decompress/constexpr_eval.h"
#include "mil/dtype.h"
#include "mil/program_walk.h"
#include "mil/tensor_data.h"
#include "package/package.h"
#include "util/guard.h"
#include "util/path_rules.h"

namespace palettize {

namespace {

void CountUses(const mil::Block& b, std::map<std::string, int>* uses) {
  for (const std::string& o : b.outputs()) ++(*uses)[o];
  for (const mil::Operation& op : b.operations()) {
    for (const auto& [name, arg] : op.inputs())
      for (const auto& binding : arg.arguments())
        if (binding.binding_case() == mil::Argument::Binding::kName) ++(*uses)[binding.name()];
    for (const mil::Block& nested : op.blocks()) CountUses(nested, uses);
  }
}

// Ops that only fed a folded chain (its inner ops, and consts bound to its inputs) are removed
// once nothing uses them.
// Returns the number of ops removed.
size_t RemoveUnused(mil::Block& b, const std::map<std::string, int>& uses,
                    const std::set<std::string>& chain_inputs) {
  size_t removed = 0;
  auto* ops = b.mutable_operations();
  for (int i = ops->size(); i-- > 0;) {
    const mil::Operation& op = ops->Get(i);
    if (op.outputs_size() != 1 || uses.count(op.outputs(0).name())) continue;
    if (IsDecompressible(op) || (op.type() == "const" && chain_inputs.count(op.outputs(0).name()))) {
      ops->DeleteSubrange(i, 1);
      ++removed;
    }
  }
  for (mil::Operation& op : *ops)
    for (mil::Block& nested : *op.mutable_blocks()) removed += RemoveUnused(nested, uses, chain_inputs);
  return removed;
}

// Replaces every decompressible op that nothing decompressible consumes by a const. `defined`
// collects the outputs of the ops visited so far, and the block's inputs.
Status FoldBlock(mil::Block& b, ConstexprEvaluator& eval, const std::set<std::string>& chain_inputs,
                 const std::string& weight_file, std::vector<PendingBlob>* pending, size_t* folded,
                 std::set<std::string>* defined) {
  for (const auto& in : b.inputs()) defined->insert(in.name());
  for (mil::Operation& op : *b.mutable_operations()) {
    for (mil::Block& nested : *op.mutable_blocks())
      PALETTIZE_RETURN_IF_ERROR(FoldBlock(nested, eval, chain_inputs, weight_file, pending, folded, defined));
    if (IsDecompressible(op)) PALETTIZE_RETURN_IF_ERROR(eval.CheckDefinedBefore(op, *defined));
    for (const auto& o : op.outputs()) defined->insert(o.name());
    if (!IsDecompressible(op) || op.outputs_size() != 1) continue;
    // Skip ops that only feed another decompressible op: the chain's last op folds them all.
    if (chain_inputs.count(op.outputs(0).name())) continue;
    DenseTensor dense;
    PALETTIZE_RETURN_IF_ERROR(eval.EvalOp(op, &dense));
    mil::Operation c;
    c.set_type("const");
    mil::Value name;
    name.mutable_type()->mutable_tensortype()->set_datatype(mil::STRING);
    name.mutable_immediatevalue()->mutable_tensor()->mutable_strings()->add_values(OpName(op));
    (*c.mutable_attributes())["name"] = name;
    *c.add_outputs() = op.outputs(0);
    mil::Value val;
    *val.mutable_type() = op.outputs(0).type();
    PendingBlob blob;
    blob.file_name = weight_file;
    blob.blob_dtype = FindDType(dense.shape.mil_type)->blob_dtype;
    blob.data = EncodeElements(dense.v, dense.shape.mil_type);
    val.mutable_blobfilevalue()->set_filename(kPendingBlobFile);
    val.mutable_blobfilevalue()->set_offset(pending->size());
    pending->push_back(std::move(blob));
    (*c.mutable_attributes())["val"] = std::move(val);
    op = std::move(c);
    ++*folded;
  }
  return Status::OK();
}

}  // namespace

static Status DecompressUnguarded(const std::string& input, const std::string& output,
                                  const DecompressOptions& options, DecompressReport* report) {
  PALETTIZE_RETURN_IF_ERROR(CheckPackageToPackage(input, output, options.overwrite));
  Package package;
  PALETTIZE_RETURN_IF_ERROR(package.Load(input));
  std::vector<PendingBlob> pending;
  size_t folded = 0;
  Status status;
  ForEachProgram(package.model(), [&](const std::string&, spec::Model&, mil::Program& program) {
    // Dense values go to the program's own weight file (pipelines give each program one).
    std::string weight_file;
    ForEachBlobValue(program, [&](mil::Value& v) {
      if (weight_file.empty()) weight_file = v.blobfilevalue().filename();
    });
    if (weight_file.empty()) weight_file = "@model_path/weights/weight.bin";
    for (auto& [fname, f] : *program.mutable_functions()) {
      for (auto& [opset, block] : *f.mutable_block_specializations()) {
        if (!status.ok()) return;
        std::map<std::string, mil::Operation*> producers;
        std::set<std::string> chain_inputs;
        IndexProducers(block, &producers, &chain_inputs);
        ConstexprEvaluator eval(package, producers);
        std::set<std::string> defined;
        for (const auto& in : f.inputs()) defined.insert(in.name());
        status = FoldBlock(block, eval, chain_inputs, weight_file, &pending, &folded, &defined);
        if (!status.ok()) return;
        // Removing a chain's last op frees the one before it: repeat until nothing changes.
        for (size_t removed = 1; removed > 0;) {
          std::map<std::string, int> uses;
          CountUses(block, &uses);
          removed = RemoveUnused(block, uses, chain_inputs);
        }
      }
    }
  });
  PALETTIZE_RETURN_IF_ERROR(status);
  PALETTIZE_RETURN_IF_ERROR(package.Save(package.model(), output, options.overwrite, pending));
  report->weights = folded;
  return Status::OK();
}

Status Decompress(const std::string& input, const std::string& output, const DecompressOptions& options,
                  DecompressReport* report) {
  return Guarded(input, [&] { return DecompressUnguarded(input, output, options, report); });
}

}  // namespace palettize
