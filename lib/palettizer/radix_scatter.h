// One pass of a least-significant-digit radix sort of order keys (uint32_t for float32 values,
// uint64_t for float64), moving the keys through a cache line per bucket.
//
// Each bucket gathers its keys in a 64-byte line of its own (the lines of all 2^kBits buckets
// stay in cache), placed as the line of the output they go to, and writes a line out once it is
// full. The writes are then whole aligned lines, which the processor stores without reading
// them first (streaming stores where it has them: the next pass reads the keys in order, from
// memory anyway), and each of the 2^kBits output streams is touched once per line rather than
// once per key. On the float32 package of scripts/bench's model T (32.8M keys), writing the lines
// with plain stores the whole run took 1.75-1.82 s of CPU, with streaming stores 1.47-1.48 s: the
// plain store of a line, which reads it first, had been 40% of DistinctFloat's samples.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace palettize {

template <class Key, int kBits>
class RadixScatter {
 public:
  static constexpr size_t kBuckets = size_t(1) << kBits;
  static constexpr size_t kLineKeys = 64 / sizeof(Key);

  RadixScatter() : storage_(kBuckets * kLineKeys + kLineKeys), fill_(kBuckets), line_at_(kBuckets) {
    const size_t misaligned = reinterpret_cast<uintptr_t>(storage_.data()) % 64 / sizeof(Key);
    lines_ = storage_.data() + (misaligned ? kLineKeys - misaligned : 0);
  }

  static Key Load(const unsigned char* base, size_t j) {
    Key k;
    std::memcpy(&k, base + sizeof(Key) * j, sizeof(Key));
    return k;
  }
  static void Store(unsigned char* base, size_t j, Key k) {
    std::memcpy(base + sizeof(Key) * j, &k, sizeof(Key));
  }

  // Keys [0, n) of `from` to `to` (which hold sizeof(Key)-aligned keys), stably, by the digit
  // (k >> shift) & (kBuckets - 1); start[b] is bucket b's first slot in `to`.
  void Pass(const unsigned char* from, unsigned char* to, size_t n, int shift, const size_t* start) {
    for (size_t b = 0; b < kBuckets; ++b) {
      const size_t misaligned = reinterpret_cast<uintptr_t>(to + sizeof(Key) * start[b]) % 64 / sizeof(Key);
      fill_[b] = uint32_t(misaligned);
      // The slot of the line's first key; the slots before start[b] belong to the bucket before
      // (or lie before `to`) and are never written from this line.
      line_at_[b] = ptrdiff_t(start[b]) - ptrdiff_t(misaligned);
    }
    for (size_t j = 0; j < n; ++j) {
      const Key k = Load(from, j);
      const size_t b = size_t(k >> shift) & (kBuckets - 1);
      Key* line = lines_ + b * kLineKeys;
      line[fill_[b]++] = k;
      if (fill_[b] == kLineKeys) {
        const ptrdiff_t at = line_at_[b], begin = ptrdiff_t(start[b]);
        if (at >= begin) {
          StreamLine(to + sizeof(Key) * size_t(at), line);
        } else {
          const size_t skip = size_t(begin - at);
          std::memcpy(to + sizeof(Key) * start[b], line + skip, sizeof(Key) * (kLineKeys - skip));
        }
        line_at_[b] = at + ptrdiff_t(kLineKeys);
        fill_[b] = 0;
      }
    }
    for (size_t b = 0; b < kBuckets; ++b) {
      const ptrdiff_t at = line_at_[b], begin = ptrdiff_t(start[b]);
      const size_t first = at >= begin ? 0 : size_t(begin - at);
      if (fill_[b] > first)
        std::memcpy(to + sizeof(Key) * size_t(at + ptrdiff_t(first)), lines_ + b * kLineKeys + first,
                    sizeof(Key) * (fill_[b] - first));
    }
#if defined(__SSE2__)
    _mm_sfence();
#endif
  }

 private:
  // One full line to 64-byte aligned `dst`.
  static void StreamLine(unsigned char* dst, const Key* line) {
#if defined(__SSE2__)
    const __m128i* src = reinterpret_cast<const __m128i*>(line);
    __m128i* out = reinterpret_cast<__m128i*>(dst);
    for (int q = 0; q < 4; ++q) _mm_stream_si128(out + q, _mm_load_si128(src + q));
#else
    std::memcpy(dst, line, 64);
#endif
  }

  std::vector<Key> storage_;
  Key* lines_;
  std::vector<uint32_t> fill_;
  std::vector<ptrdiff_t> line_at_;
};

// 4-byte words written in order from `base`, a 64-byte line at a time: whole lines through
// streaming stores when `base` is 64-byte aligned (the line is not read first), plain copies
// otherwise. DistinctFloatPacked writes its values and counts (218 MB on 27.2M distinct values)
// this way. The words of a line reach memory only when the line is full or at Finish.
class LineStream {
 public:
  explicit LineStream(unsigned char* base)
      : base_(base), aligned_(reinterpret_cast<uintptr_t>(base) % 64 == 0) {}
  void Put(uint32_t v) {
    line_[fill_++] = v;
    if (fill_ == 16) {
#if defined(__SSE2__)
      if (aligned_) {
        __m128i* out = reinterpret_cast<__m128i*>(base_ + 4 * done_);
        const __m128i* in = reinterpret_cast<const __m128i*>(line_);
        for (int q = 0; q < 4; ++q) _mm_stream_si128(out + q, _mm_load_si128(in + q));
      } else {
        std::memcpy(base_ + 4 * done_, line_, 64);
      }
#else
      std::memcpy(base_ + 4 * done_, line_, 64);
#endif
      done_ += 16, fill_ = 0;
    }
  }
  void Finish() {
    std::memcpy(base_ + 4 * done_, line_, 4 * fill_);
    done_ += fill_, fill_ = 0;
#if defined(__SSE2__)
    _mm_sfence();
#endif
  }

 private:
  alignas(64) uint32_t line_[16];
  unsigned char* base_;
  bool aligned_;
  size_t done_ = 0;
  unsigned fill_ = 0;
};

}  // namespace palettize
