// Lower bounds on the cost still to come, for the pruned DP of exact 1-D k-means (kmeans1d.cc).
//
// A row of the DP (j clusters over the first p values) can lie on a clustering of all values that
// costs at most a bound B only if D[j][p] + OPT_{k-j}(values [p, n)) <= B. OPT of the rest is not
// known, but for any lambda > 0 the Lagrangian G(p) = min over a of OPT_a(values [p, n)) + lambda a
// gives OPT_{k-j} >= G(p) - lambda (k - j), and G takes one DP without layers. That DP runs here
// on a coarser problem whose optimum is provably no larger (see kmeans1d_remainder.cc), so it costs
// a small fraction of the exact one. Within 0.5% of the optimum (Lloyd's cost as B), on 16-bit
// float groups of 12,288 values with k = 16, this keeps about two fifths of the rows that B alone
// keeps (18,500 a group on BENCHMARKS.md's 85M model, against 47,000).
#pragma once

#include <cstddef>
#include <vector>

namespace palettize::detail {

// For n values x ascending with positive weights w, `starts` the k >= 2 starts of a good
// clustering of them (it sets how coarse the coarser problem is) and lambda > 0: suffix[p]
// (p = 0..n) is at most min over a >= 0 of OPT_a(values [p, n)) + lambda a, and mirrored[q] the
// same for values [0, n - q) (the suffixes of the mirrored problem, values negated in reverse
// order). Both are nonincreasing, end in 0, and are lowered by `slack` for the rounding of the
// costs. `units`, when given, takes the coarser problem's units as runs of values: each unit's first
// value, ascending (every start of `starts` among them), then n.
void RemainderBounds(const double* x, const double* w, size_t n, const std::vector<size_t>& starts,
                     double lambda, double slack, std::vector<double>* suffix, std::vector<double>* mirrored,
                     std::vector<size_t>* units = nullptr);

}  // namespace palettize::detail
