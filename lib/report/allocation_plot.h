// --plot FILE.svg (issue 14 item 5): an allocation's picture, a self-contained SVG 1.1 document
// (no scripts, no external references, no fonts beyond the generic sans-serif), 1000 x 700.
//
//   top panel     x: bits per weight of the allocated weights; y: total cost, log scale.
//                 polyline.frontier   the Lagrangian frontier (report/allocation_points.h), cut
//                                     at the right edge of the panel
//                 circle.uniform      every weight at 2, 3, 4, 6, 8 bits (those all weights have)
//                 circle.chosen       this allocation
//                 line.budget         --target-bpw / --target-size, as bits per weight
//   bottom panel  rect.bar, one per weight in model order: height its chosen nbits (kept
//                 uncompressed: full height, grey), colour by nbits, <title> naming the weight
//   rect.plot-area  each panel's frame; every mark lies inside it
//
// A total cost of 0 is drawn on the bottom edge of the log axis.
#pragma once

#include <string>

#include "palettize/allocation.h"
#include "palettize/status.h"

namespace palettize {

std::string AllocationPlotSvg(const Allocation& allocation);

// Writes AllocationPlotSvg to `path` beside, then renamed (util/staging.h), replacing an existing
// file. Errors name `path`: "p.svg: cannot write plot: <reason>".
Status WriteAllocationPlot(const std::string& path, const Allocation& allocation);

}  // namespace palettize
