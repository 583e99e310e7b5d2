// Transparent huge pages for large buffers searched at random. A weighted tensor of 32.8M values
// looks up each element's value among hundreds of megabytes: with 4 KiB pages each lookup is a
// TLB miss as well as a cache miss; backed by 2 MiB pages (Linux with transparent huge pages
// "always" or "madvise") the weighted float64 tensor takes 20-30% less CPU. Not for buffers
// only read and written in order: there the kernel's compaction to find 2 MiB pages at each
// fault cost more than the faults saved (a float32 package: 3.1-3.4 s of CPU against 2.5-2.8 s).
// Only advice: elsewhere, or when refused, memory is as before.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace palettize {

// Asks for 2 MiB pages over the whole 2 MiB pages inside [p, p + bytes), for buffers of 8 MiB and
// more (smaller ones are left alone). Call before the first write: pages touched already stay small.
void AdviseHugePages(const void* p, size_t bytes);

// v.reserve(n), advised as above when `advise`.
template <typename T>
void ReserveHuge(std::vector<T>& v, size_t n, bool advise = true) {
  v.reserve(n);
  if (advise) AdviseHugePages(v.data(), v.capacity() * sizeof(T));
}

// An array of n T left uninitialized (no zero-filling pass: its pages are first touched by the
// caller's writes), advised as above when `advise`.
template <typename T>
std::unique_ptr<T[]> NewHugeArray(size_t n, bool advise = true) {
  std::unique_ptr<T[]> a(new T[n]);
  if (advise) AdviseHugePages(a.get(), n * sizeof(T));
  return a;
}

}  // namespace palettize
