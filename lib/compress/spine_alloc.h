// Bit allocation in the spine (issue 14), for packages and checkpoints alike: every job's weight
// swept over the widths its output can hold (lib/alloc/candidates.h; in parallel, largest first,
// each weight's tables kept but not its indices), the Allocation built in model order and solved
// (lib/alloc/allocate.h), and each job handed its chosen width's sweep result, whose indices the
// spine's write phase recovers from the kept tables (FillIndices) instead of clustering again.
//
// Memory: per weight, only its tables, scales and totals at each width, and of those only the
// chosen width's once solved; indices exist only for the weights in flight while writing.
#pragma once

#include <string>
#include <vector>

#include "compress/spine.h"
#include "palettize/allocation.h"
#include "palettize/compress.h"
#include "palettize/status.h"

namespace palettize {

// Checks the allocation options of `o` before any work: a finite positive budget (min_snr,
// min_output_psnr: any finite dB), emit_config_path, plot_path, relative_cost and calibration
// only with an objective, relative_cost not with sensitivity_file, calibration not with
// sensitivity_file, relative_cost or min_snr, min_output_psnr only with calibration. One-line
// InvalidArgument naming the options (GetOptionNames()). First the rules of a sharded sweep
// (spine_costs.h: ValidateCostsOptions; `output` is the run's output path); costs count as
// calibration in the rules above, except that min_output_psnr needs calibration itself.
Status ValidateAllocationOptions(const CompressOptions& o, const std::string& output = "");

// What the allocation leaves for the outputs: the emitted config and the plot, as text, made
// before anything is written so that a config that cannot be emitted fails the run first.
struct AllocationTexts {
  std::string config_yaml;  // when settings.emit_config_path is set
  std::string plot_svg;     // when settings.plot_path is set
};

// Sweeps `jobs` (read, sensitivities matched, largest first), with settings.meter measures every
// candidate's output error as its cost (spine_measured.h), solves settings.objective over them, and sets each
// job's allocated_nbits (and allocated / allocation_note), its report entry's config nbits and results
// (nbits, tables, errors, bytes_after as the chosen candidate stores it; kept uncompressed: not palettized,
// with the reason) and report->allocation. An impossible budget is an error here, before the output is begun.
Status AllocateJobs(std::vector<SpineJob>& jobs, const SpineSettings& settings, SpineIO& io,
                    CompressReport* report, AllocationTexts* texts);

}  // namespace palettize
