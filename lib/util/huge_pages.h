// Transparent huge pages for large buffers. A tensor of 32.8M values sorts and searches arrays of
// hundreds of megabytes: with 4 KiB pages their first touch is a page fault every 4 KiB (about 15%
// of a float32 package's CPU) and each random access into them a TLB miss. Backed by 2 MiB pages
// (where the kernel allows it: Linux with transparent huge pages "always" or "madvise"), both
// fall by 512x. Only advice: elsewhere, or when refused, memory is as before.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace palettize {

// Asks for 2 MiB pages over the whole 2 MiB pages inside [p, p + bytes), for buffers of 8 MiB and
// more (smaller ones are left alone). Call before the first write: pages touched already stay small.
void AdviseHugePages(const void* p, size_t bytes);

// v.reserve(n), advised as above.
template <typename T>
void ReserveHuge(std::vector<T>& v, size_t n) {
  v.reserve(n);
  AdviseHugePages(v.data(), v.capacity() * sizeof(T));
}

// An array of n T left uninitialized (no zero-filling pass: its pages are first touched by the
// caller's writes), advised as above.
template <typename T>
std::unique_ptr<T[]> NewHugeArray(size_t n) {
  std::unique_ptr<T[]> a(new T[n]);
  AdviseHugePages(a.get(), n * sizeof(T));
  return a;
}

}  // namespace palettize
