#include "palettizer/totals.h"

#include <cmath>
#include <cstdio>

namespace palettize {

bool SetTotals(double sse, double signal, double max_err, double wsse, int e, int sens_exponent,
               double largest, PalettizedWeight* p, std::string* reason) {
  p->sse = std::ldexp(sse, 2 * e);
  p->signal = std::ldexp(signal, 2 * e);
  p->max_abs_error = std::ldexp(max_err, e);
  p->weighted_sse = std::ldexp(wsse, 2 * e + sens_exponent);
  p->snr_db = sse == 0 ? INFINITY : 10.0 * std::log10(signal / sse);
  if (std::isfinite(p->sse) && std::isfinite(p->max_abs_error) && std::isfinite(p->weighted_sse)) return true;
  if (!std::isfinite(p->sse) || !std::isfinite(p->max_abs_error)) {
    char buf[120];
    std::snprintf(buf, sizeof buf,
                  "its errors reach past the largest double (largest |value| %.3g); not palettized", largest);
    *reason = buf;
  } else {
    *reason = "its sensitivity-weighted squared errors sum past the largest double; not palettized";
  }
  return false;
}

}  // namespace palettize
