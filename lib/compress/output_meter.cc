#include "compress/output_meter.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace palettize {

double PairPsnrDb(double error) {
  if (std::isnan(error)) return error;
  return error > 0 ? -10 * std::log10(error) : std::numeric_limits<double>::infinity();
}

double WorstPsnrDb(const std::vector<double>& errors) {
  double worst = std::numeric_limits<double>::infinity();
  for (double e : errors) {
    const double db = PairPsnrDb(e);
    if (std::isnan(db)) return db;
    worst = std::min(worst, db);
  }
  return worst;
}

double MeanPsnrDb(const std::vector<double>& errors) {
  double sum = 0;
  for (double e : errors) sum += e;
  return errors.empty() ? std::numeric_limits<double>::infinity() : PairPsnrDb(sum / double(errors.size()));
}

}  // namespace palettize
