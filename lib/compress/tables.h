// `compress --tables FILE`: LUT ops from tables trained elsewhere (palettize.torch's DKM, through
// save_palettized), written as they are instead of computed. FILE is a `--packed` safetensors
// (docs/format.md section 9): per palettized tensor X, __metadata__["palettize.X"], X.lut,
// X.indices, with int8 tables X.lut_scale (written as the int8 LUT form, as lut_dtype int8) and,
// with a per-channel scale, X.scale.
//
// Name rule (docs/format.md section 10): table X applies to each const named X, X with every '.'
// replaced by '_' (ct.convert's name for Torch parameter "fc1.weight" is "fc1_weight"), or either
// of those followed by "_to_fp16" (its name at float16 precision), in every program and function.
// Every table must match at least one const, and no const two tables; the const must have X's
// shape, and its values must be exactly what the table decodes to (rounded to the const's dtype),
// element for element, bit for bit: the LUT ops then decompress to the const as it is. Consts no
// table names are left as they are.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mil/weights.h"
#include "package/package.h"
#include "palettize/status.h"
#include "palettizer/weight_palettizer.h"
#include "plan/plan.h"

namespace palettize {

// For every weight: its plan (palettized from a table, or "no table in FILE") and, when a table
// applies, the PalettizedWeight it encodes (decoded filled, sse 0). Errors (exit 1) are one line
// naming FILE and the table.
Status PlanFromTables(Package& package, const std::vector<ConstWeight>& weights, const std::string& file,
                      std::vector<WeightPlan>* plans, std::vector<std::optional<PalettizedWeight>>* presets);

}  // namespace palettize
