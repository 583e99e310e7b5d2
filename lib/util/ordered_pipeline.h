// A parallel map whose results are consumed in a fixed order: `work(job)` runs for each job on a
// pool of workers, and `finish(result)` runs one at a time, in the order of `jobs`, so whatever
// `finish` writes or sums is the same for any thread count. At most two jobs per worker are in
// flight, so memory holds only their results.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

namespace palettize {

// `threads` workers (0: one per core), at most one per core this process may use: TBB would not
// start more anyway, and asking it to prints a warning on stderr. `work` returns a copyable result
// (a shared_ptr for large ones); `finish` takes it by const reference.
template <typename Work, typename Finish>
void RunOrdered(const std::vector<size_t>& jobs, int threads, Work work, Finish finish) {
  using Result = decltype(work(size_t()));
  tbb::task_arena arena(threads > 0 ? std::min(threads, tbb::info::default_concurrency())
                                    : tbb::task_arena::automatic);
  size_t next = 0;
  arena.execute([&] {
    tbb::parallel_pipeline(2 * size_t(arena.max_concurrency()),
                           tbb::make_filter<void, size_t>(tbb::filter_mode::serial_in_order,
                                                          [&](tbb::flow_control& fc) -> size_t {
                                                            if (next >= jobs.size()) {
                                                              fc.stop();
                                                              return 0;
                                                            }
                                                            return jobs[next++];
                                                          }) &
                               tbb::make_filter<size_t, Result>(tbb::filter_mode::parallel, work) &
                               tbb::make_filter<Result, void>(tbb::filter_mode::serial_in_order, finish));
  });
}

}  // namespace palettize
