#include "util/page_buffer.h"

#include <new>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace palettize {

PageBuffer::PageBuffer(size_t bytes) : size_(bytes) {
#if defined(__linux__) && defined(MAP_POPULATE)
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  data_ = static_cast<unsigned char*>(p);
#else
  data_ = new unsigned char[bytes];
#endif
}

PageBuffer::~PageBuffer() { Free(); }

PageBuffer& PageBuffer::operator=(PageBuffer&& o) noexcept {
  if (this != &o) {
    Free();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void PageBuffer::Free() {
  if (data_ == nullptr) return;
#if defined(__linux__) && defined(MAP_POPULATE)
  munmap(data_, size_);
#else
  delete[] data_;
#endif
  data_ = nullptr, size_ = 0;
}

}  // namespace palettize
