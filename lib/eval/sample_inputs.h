// The inputs of one run, as `palettize eval --inputs FILE --seed SEED` makes them: every input of
// the function read from the .npz by name, or generated (eval/input_gen.h) when the file lacks it.
// Types come from the function's own input declarations in the program (any function of a
// multifunction model), completed by the model description's flexible shapes (eval/input_shapes.h).
// Shared by eval and by callers above it (compare's output fidelity runs two packages on the same
// inputs, made once from the original's input description).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eval/input_shapes.h"
#include "eval/tensor.h"
#include "mil/weights.h"
#include "npy/npz.h"
#include "package/package.h"

namespace palettize::eval {

// The samples `inputs` names: a file as given, a folder as its *.npz files in name order. A folder
// without one is InvalidArgument naming it and `what` (the option that named it).
Status ListSamples(const std::vector<std::string>& inputs, const std::string& what,
                   std::vector<std::string>* samples);

// Every array of `npz` must name an input of the function (`declared`): a misspelt name would
// otherwise leave that input generated without a word. InvalidArgument naming `file` and the array.
Status CheckInputArrays(const NpzFile& npz, const std::string& file, const std::string& function,
                        const std::vector<std::pair<std::string, const mil::ValueType*>>& declared);

// One input `name` of declared `type`: the array of `npz` (may be null) of that name, checked
// against the type and the described shapes (`described`, may be null), or when there is none, one
// generated from `seed` in the described default shape. `generated` says which.
Status ReadOrGenerateInput(const std::string& name, const mil::ValueType& type,
                           const DescribedShape* described, const NpzFile* npz, const std::string& file,
                           uint64_t seed, Tensor* out, bool* generated);

// Every input of `function` of `package`: from the .npz at `npz_path` ("" generates all of them),
// each checked against its declared dtype and shape, or generated from `seed`. `generated` (may
// be null) gets the names of those generated.
Status SampleInputs(const Package& package, const std::string& function, const std::string& npz_path,
                    uint64_t seed, std::map<std::string, Tensor>* inputs,
                    std::vector<std::string>* generated);

}  // namespace palettize::eval
