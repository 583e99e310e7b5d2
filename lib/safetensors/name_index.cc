// Linear probing over a power-of-two table kept at most half full: name_index.h.
#include "safetensors/name_index.h"

#include <functional>

namespace palettize {

NameIndex::NameIndex(size_t expected) {
  size_t n = 16;
  while (n < 2 * expected) n *= 2;
  slots_.assign(n, 0);
  names_.reserve(expected);
  hashes_.reserve(expected);
}

size_t NameIndex::Insert(std::string_view name) {
  if (2 * (names_.size() + 1) > slots_.size()) Grow();
  const uint64_t h = std::hash<std::string_view>()(name);
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == 0) {
      slots_[i] = uint32_t(names_.size() + 1);
      names_.push_back(name);
      hashes_.push_back(h);
      return kNone;
    }
    const size_t k = slots_[i] - 1;
    if (hashes_[k] == h && names_[k] == name) return k;
  }
}

size_t NameIndex::Find(std::string_view name) const {
  const uint64_t h = std::hash<std::string_view>()(name);
  const size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    if (slots_[i] == 0) return kNone;
    const size_t k = slots_[i] - 1;
    if (hashes_[k] == h && names_[k] == name) return k;
  }
}

void NameIndex::Grow() {
  slots_.assign(2 * slots_.size(), 0);
  const size_t mask = slots_.size() - 1;
  for (size_t k = 0; k < names_.size(); ++k) {
    size_t i = hashes_[k] & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = uint32_t(k + 1);
  }
}

}  // namespace palettize
