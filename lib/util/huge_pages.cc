#include "util/huge_pages.h"

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace palettize {

void AdviseHugePages(const void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr size_t kHuge = size_t(1) << 21;
  if (bytes < (size_t(8) << 20)) return;
  // The whole 2 MiB pages inside the buffer: from its first 2 MiB boundary on.
  const size_t lead = (kHuge - reinterpret_cast<uintptr_t>(p) % kHuge) % kHuge;
  const size_t len = (bytes - lead) / kHuge * kHuge;
  // Advice only: an error (a kernel without THP) leaves the pages as they were.
  if (len > 0) (void)madvise(const_cast<char*>(static_cast<const char*>(p)) + lead, len, MADV_HUGEPAGE);
#else
  (void)p, (void)bytes;
#endif
}

}  // namespace palettize
