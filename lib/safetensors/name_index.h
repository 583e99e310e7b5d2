// A set of names with their numbers, by open addressing: one probe sequence per lookup and no
// allocation per name. std::unordered_set allocates a node per name and chases pointers from the
// bucket to the node to the string: for the 1M names of a large safetensors header that was the
// largest cost of reading it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace palettize {

class NameIndex {
 public:
  static constexpr size_t kNone = SIZE_MAX;

  // Room for `expected` names before the first rehash.
  explicit NameIndex(size_t expected = 0);

  // Adds `name` as number size() and returns kNone, or returns the number of the equal name added
  // before (and adds nothing). The name's characters must outlive the index.
  size_t Insert(std::string_view name);
  // The number of `name`, or kNone.
  size_t Find(std::string_view name) const;
  size_t size() const { return names_.size(); }

 private:
  void Grow();

  std::vector<std::string_view> names_;
  std::vector<uint64_t> hashes_;
  std::vector<uint32_t> slots_;  // a name's number + 1, or 0 for an empty slot; a power of two long
};

}  // namespace palettize
