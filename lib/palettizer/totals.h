// A weight's error totals (sse, SNR, max error, weighted sse) from its scaled sums.
#pragma once

#include <string>

#include "palettizer/weight_palettizer.h"

namespace palettize {

// Sets a weight's error totals from sums over its values scaled by 2^-e (e = FarExponent of the
// largest magnitude, 0 for every float16/float32 weight) and sensitivities scaled by
// 2^-sens_exponent (ElementWeights::exponent), back in the weight's own units; the SNR comes from
// the scaled sums, whose ratio is the true one. False, with `reason`, when sse, max_abs_error or
// weighted_sse does not fit a double: a report could not state them.
bool SetTotals(double sse, double signal, double max_err, double wsse, int e, int sens_exponent,
               double largest, PalettizedWeight* p, std::string* reason);

}  // namespace palettize
