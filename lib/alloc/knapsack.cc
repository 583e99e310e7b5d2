// The method, for curves i with options j of bytes b_ij and cost c_ij, and budget B:
//
// 1. Each curve keeps its efficient options only (no other option has both fewer or equal bytes and
//    lower or equal cost): some optimum uses only those, since swapping an option for one that
//    dominates it keeps the budget and the cost. They ascend in bytes and descend in cost.
// 2. For any lambda >= 0 and any assignment x within the budget,
//      cost(x) = sum_i c_ix = L(lambda) + sum_i rc_ix + lambda (B - bytes(x)),
//    with m_i = min_j c_ij + lambda b_ij, rc_ij = c_ij + lambda b_ij - m_i >= 0 and
//    L(lambda) = sum_i m_i - lambda B. Both other terms are >= 0, so L(lambda) bounds every cost
//    from below. At lambda* = the cost per byte of the first segment of the curves' lower convex
//    hulls that no longer fits (segments taken most efficient first, the LP relaxation's order)
//    L is the LP optimum, the best such bound.
// 3. That greedy, continued past lambda* with the segments that still fit, is a feasible point:
//    the incumbent U. An option with L + rc_ij >= U cannot be in any better assignment: it is
//    dropped. Usually few curves keep more than one option.
// 4. A dynamic program over the curves that keep several options, one layer each, whose states
//    (bytes, cost) are Pareto-pruned and dropped when even their Lagrangian completion
//    (step 2, with lambda times the budget the remaining curves can use at most) reaches U.
//    Curves of equal shape collapse into few states, where a depth-first search would try every
//    permutation of their choices. Its cheapest final state, if below U, is the optimum.
// Comparisons against U allow 1e-12 relative, the rounding of the double sums: the optimum found
// is exact to that, and equal-cost alternatives are not searched.
#include "alloc/knapsack.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

namespace palettize {

std::vector<int> EfficientOptions(const std::vector<KnapsackOption>& options) {
  std::vector<int> order(options.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const KnapsackOption &x = options[size_t(a)], &y = options[size_t(b)];
    return x.bytes != y.bytes ? x.bytes < y.bytes : x.cost < y.cost;
  });
  std::vector<int> kept;
  for (int j : order)
    if (kept.empty() || options[size_t(j)].cost < options[size_t(kept.back())].cost) kept.push_back(j);
  return kept;
}

std::vector<size_t> LowerHull(const std::vector<KnapsackOption>& options, const std::vector<int>& front) {
  std::vector<size_t> h;
  auto at = [&](size_t k) -> const KnapsackOption& { return options[size_t(front[k])]; };
  // Slopes are cost per byte, negative, rising along a convex hull.
  auto slope = [&](size_t a, size_t b) {
    return (at(b).cost - at(a).cost) / double(at(b).bytes - at(a).bytes);
  };
  for (size_t k = 0; k < front.size(); ++k) {
    while (h.size() >= 2 && slope(h[h.size() - 2], h.back()) >= slope(h.back(), k)) h.pop_back();
    h.push_back(k);
  }
  return h;
}

namespace {

using Clock = std::chrono::steady_clock;

struct Segment {
  double efficiency;  // cost saved per byte added
  size_t curve, step;
};

// A curve that keeps several options after the reduction, in search order: its options (the
// caller's indices), their bytes and costs, and its m_i.
struct FreeCurve {
  size_t curve;
  std::vector<int> option;
  std::vector<uint64_t> bytes;
  std::vector<double> cost;
  double m;
};

// A partial assignment of the first d free curves: bytes and cost including the fixed curves',
// and how it was reached (its parent at layer d - 1 and the option taken).
struct State {
  uint64_t bytes;
  double cost;
  uint32_t parent;
  uint32_t option;
};

// Improves a feasible assignment (options of `front`, as positions `at`) by the best single move
// into the unused budget, or the best pair of moves (one curve to fewer bytes, another to more)
// that fits, until neither lowers the cost. A better incumbent shrinks both the reduction and
// the dynamic program.
void Improve(const std::vector<std::vector<KnapsackOption>>& curves,
             const std::vector<std::vector<int>>& front, uint64_t budget, std::vector<size_t>* at) {
  const size_t n = curves.size();
  auto opt = [&](size_t i, size_t k) -> const KnapsackOption& { return curves[i][size_t(front[i][k])]; };
  struct Move {
    uint64_t bytes;  // freed (down) or added (up)
    double cost;     // added (down) or saved (up)
    size_t curve, to;
  };
  for (int round = 0; round < 64; ++round) {
    uint64_t used = 0;
    for (size_t i = 0; i < n; ++i) used += opt(i, (*at)[i]).bytes;
    const uint64_t room = budget - used;
    std::vector<Move> down, up;
    for (size_t i = 0; i < n; ++i) {
      const KnapsackOption& cur = opt(i, (*at)[i]);
      for (size_t k = 0; k < front[i].size(); ++k) {
        const KnapsackOption& o = opt(i, k);
        if (k < (*at)[i]) down.push_back({cur.bytes - o.bytes, o.cost - cur.cost, i, k});
        if (k > (*at)[i]) up.push_back({o.bytes - cur.bytes, cur.cost - o.cost, i, k});
      }
    }
    // Down moves by freed bytes, descending, with the two cheapest of different curves so far.
    std::sort(down.begin(), down.end(), [](const Move& a, const Move& b) { return a.bytes > b.bytes; });
    std::vector<std::pair<size_t, size_t>> best2(down.size(), {SIZE_MAX, SIZE_MAX});
    for (size_t q = 0; q < down.size(); ++q) {
      auto [a, b] = q ? best2[q - 1] : std::pair<size_t, size_t>{SIZE_MAX, SIZE_MAX};
      auto cheaper = [&](size_t x, size_t y) { return y == SIZE_MAX || down[x].cost < down[y].cost; };
      if (cheaper(q, a)) {
        if (a != SIZE_MAX && down[a].curve != down[q].curve) b = a;
        a = q;
      } else if (down[q].curve != down[a].curve && cheaper(q, b)) {
        b = q;
      }
      best2[q] = {a, b};
    }
    double gain = 0;
    const Move* best_up = nullptr;
    const Move* best_down = nullptr;
    for (const Move& u : up) {
      if (u.bytes <= room) {
        if (u.cost > gain) gain = u.cost, best_up = &u, best_down = nullptr;
        continue;
      }
      // The down moves that free at least u.bytes - room: a prefix of `down`.
      const uint64_t need = u.bytes - room;
      size_t lo = 0, hi = down.size();
      while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (down[mid].bytes >= need)
          lo = mid + 1;
        else
          hi = mid;
      }
      if (lo == 0) continue;
      auto [a, b] = best2[lo - 1];
      const size_t d = down[a].curve != u.curve ? a : b;
      if (d != SIZE_MAX && u.cost - down[d].cost > gain)
        gain = u.cost - down[d].cost, best_up = &u, best_down = &down[d];
    }
    if (!best_up || gain <= 0) return;
    (*at)[best_up->curve] = best_up->to;
    if (best_down) (*at)[best_down->curve] = best_down->to;
  }
}

}  // namespace

void KnapsackRange(const std::vector<std::vector<KnapsackOption>>& curves, uint64_t* smallest,
                   uint64_t* largest) {
  *smallest = *largest = 0;
  for (const auto& c : curves) {
    if (c.empty()) continue;
    uint64_t lo = c[0].bytes, hi = c[0].bytes;
    for (const KnapsackOption& o : c) lo = std::min(lo, o.bytes), hi = std::max(hi, o.bytes);
    *smallest += lo, *largest += hi;
  }
}

bool SolveKnapsack(const std::vector<std::vector<KnapsackOption>>& curves, uint64_t budget,
                   const KnapsackLimits& limits, KnapsackSolution* out) {
  const auto start = Clock::now();
  const size_t n = curves.size();
  std::vector<std::vector<int>> front(n);
  uint64_t least = 0;
  for (size_t i = 0; i < n; ++i) {
    if (curves[i].empty()) return false;
    front[i] = EfficientOptions(curves[i]);
    least += curves[i][size_t(front[i][0])].bytes;
  }
  if (least > budget) return false;
  KnapsackSolution s;
  s.chosen.assign(n, 0);
  auto finish = [&](const std::vector<int>& chosen, double lower, bool proven) {
    s.chosen = chosen;
    s.bytes = 0;
    s.cost = 0;
    for (size_t i = 0; i < n; ++i) {
      s.bytes += curves[i][size_t(chosen[i])].bytes;
      s.cost += curves[i][size_t(chosen[i])].cost;
    }
    s.proven = proven;
    s.lower_bound = proven ? s.cost : std::min(lower, s.cost);
    *out = std::move(s);
    return true;
  };

  // The greedy over hull segments, most efficient first (ties: curve, then step, so each
  // curve's segments come in order even when their efficiencies round equal).
  std::vector<std::vector<size_t>> hull(n);
  std::vector<Segment> segments;
  for (size_t i = 0; i < n; ++i) {
    hull[i] = LowerHull(curves[i], front[i]);
    for (size_t k = 0; k + 1 < hull[i].size(); ++k) {
      const KnapsackOption& a = curves[i][size_t(front[i][hull[i][k]])];
      const KnapsackOption& b = curves[i][size_t(front[i][hull[i][k + 1]])];
      segments.push_back({(a.cost - b.cost) / double(b.bytes - a.bytes), i, k});
    }
  }
  std::stable_sort(segments.begin(), segments.end(), [](const Segment& a, const Segment& b) {
    return a.efficiency != b.efficiency ? a.efficiency > b.efficiency
           : a.curve != b.curve         ? a.curve < b.curve
                                        : a.step < b.step;
  });
  std::vector<size_t> at(n, 0);  // hull vertex each curve has reached
  std::vector<char> blocked(n, 0);
  uint64_t room = budget - least;
  double lambda = -1;
  for (const Segment& g : segments) {
    if (blocked[g.curve] || at[g.curve] != g.step) continue;
    const uint64_t b0 = curves[g.curve][size_t(front[g.curve][hull[g.curve][g.step]])].bytes;
    const uint64_t b1 = curves[g.curve][size_t(front[g.curve][hull[g.curve][g.step + 1]])].bytes;
    if (b1 - b0 <= room) {
      room -= b1 - b0;
      at[g.curve] = g.step + 1;
    } else {
      if (lambda < 0) lambda = g.efficiency;
      blocked[g.curve] = 1;
    }
  }
  std::vector<int> greedy(n);
  for (size_t i = 0; i < n; ++i) greedy[i] = front[i][hull[i][at[i]]];
  // Every curve reached its cheapest option: nothing is better.
  if (lambda < 0) return finish(greedy, 0, true);
  std::vector<size_t> position(n);
  for (size_t i = 0; i < n; ++i) position[i] = hull[i][at[i]];
  Improve(curves, front, budget, &position);
  for (size_t i = 0; i < n; ++i) greedy[i] = front[i][position[i]];

  // The Lagrangian bound at lambda and every option's reduced cost.
  double lower = -lambda * double(budget);
  std::vector<double> m(n);
  for (size_t i = 0; i < n; ++i) {
    m[i] = std::numeric_limits<double>::infinity();
    for (int j : front[i])
      m[i] = std::min(m[i], curves[i][size_t(j)].cost + lambda * double(curves[i][size_t(j)].bytes));
    lower += m[i];
  }
  double upper = 0;
  for (size_t i = 0; i < n; ++i) upper += curves[i][size_t(greedy[i])].cost;
  const double tolerance = 1e-12 * std::fabs(upper);
  if (lower >= upper - tolerance) return finish(greedy, lower, true);

  std::vector<FreeCurve> free;
  std::vector<int> chosen(n, -1);
  uint64_t fixed_bytes = 0;
  double fixed_cost = 0;
  for (size_t i = 0; i < n; ++i) {
    FreeCurve f{i, {}, {}, {}, m[i]};
    for (int j : front[i]) {
      const KnapsackOption& o = curves[i][size_t(j)];
      const double rc = std::max(0.0, o.cost + lambda * double(o.bytes) - m[i]);
      if (lower + rc >= upper - tolerance) continue;
      f.option.push_back(j), f.bytes.push_back(o.bytes), f.cost.push_back(o.cost);
    }
    if (f.option.size() == 1) {
      chosen[i] = f.option[0];
      fixed_bytes += f.bytes[0], fixed_cost += f.cost[0];
    } else {
      free.push_back(std::move(f));
    }
  }
  // The curves with the widest byte choices first: the budget then prunes early.
  std::stable_sort(free.begin(), free.end(), [](const FreeCurve& a, const FreeCurve& b) {
    return a.bytes.back() - a.bytes.front() > b.bytes.back() - b.bytes.front();
  });
  const size_t depth = free.size();
  // What the curves from depth d on need at least and can use at most, and their sum of m_i.
  std::vector<uint64_t> need(depth + 1, 0), can(depth + 1, 0);
  std::vector<double> m_rest(depth + 1, 0);
  for (size_t d = depth; d-- > 0;) {
    need[d] = need[d + 1] + free[d].bytes.front();
    can[d] = can[d + 1] + free[d].bytes.back();
    m_rest[d] = m_rest[d + 1] + free[d].m;
  }
  // Dynamic programming over the free curves, one layer each, keeping the Pareto states (no other
  // has fewer or equal bytes and a lower or equal cost: it would do at least as well with any
  // completion) whose completions could still beat the incumbent: a state of bytes b and cost c
  // at depth d completes to at least c + m_rest[d] - lambda * min(budget - b, can[d]) (step 2).
  std::vector<std::vector<State>> layers(depth + 1);
  layers[0].push_back({fixed_bytes, fixed_cost, 0, 0});
  std::vector<State> next;
  uint64_t states = 0;
  bool stopped = false;
  for (size_t d = 0; d < depth && !stopped; ++d) {
    const FreeCurve& f = free[d];
    next.clear();
    for (uint32_t p = 0; p < layers[d].size(); ++p) {
      const State& s0 = layers[d][p];
      for (uint32_t k = 0; k < f.option.size(); ++k) {
        const uint64_t b = s0.bytes + f.bytes[k];
        if (b + need[d + 1] > budget) break;  // bytes ascend with k
        const double c = s0.cost + f.cost[k];
        const double bound = c + m_rest[d + 1] - lambda * double(std::min(budget - b, can[d + 1]));
        if (bound >= upper - tolerance) continue;
        next.push_back({b, c, p, k});
      }
    }
    std::sort(next.begin(), next.end(), [](const State& a, const State& b) {
      return a.bytes != b.bytes     ? a.bytes < b.bytes
             : a.cost != b.cost     ? a.cost < b.cost
             : a.parent != b.parent ? a.parent < b.parent
                                    : a.option < b.option;
    });
    std::vector<State>& kept = layers[d + 1];
    for (const State& st : next)
      if (kept.empty() || st.cost < kept.back().cost) kept.push_back(st);
    states += kept.size();
    if (kept.empty()) break;  // nothing beats the incumbent
    if (states > limits.max_nodes ||
        std::chrono::duration<double>(Clock::now() - start).count() > limits.max_seconds)
      stopped = true;
  }
  s.nodes = states;
  if (stopped || depth == 0 || layers[depth].empty()) return finish(greedy, lower, !stopped);
  // The last layer's cheapest state (Pareto: the last one), traced back.
  uint32_t at_state = uint32_t(layers[depth].size() - 1);
  if (layers[depth][at_state].cost >= upper - tolerance) return finish(greedy, lower, true);
  for (size_t d = depth; d-- > 0;) {
    const State& st = layers[d + 1][at_state];
    chosen[free[d].curve] = free[d].option[st.option];
    at_state = st.parent;
  }
  return finish(chosen, lower, true);
}

}  // namespace palettize
