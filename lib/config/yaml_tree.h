// A YAML document as the config parser reads it: maps (their pairs in file order, duplicates
// kept), sequences (only their kind matters here), scalars with their tag, and nulls, each with
// the mark yaml-cpp reports for it. Built from yaml-cpp's parser events in one pass: yaml-cpp's
// own YAML::Node needs a second parse after the one that counts documents, and its nodes are
// shared pointers in a shared memory pool; a 200k-key op_name_configs took ~5 s that way, against
// ~1.3 s for the events alone.
//
// Anchors and aliases: an alias is the anchored node itself (no copy), as in yaml-cpp.
#pragma once

#include <yaml-cpp/mark.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "palettize/status.h"

namespace palettize {

class YamlTree {
 public:
  enum class Kind { kNull, kScalar, kSequence, kMap };

 private:
  struct Data {
    Kind kind = Kind::kNull;
    YAML::Mark mark;
    std::string tag, scalar;
    std::vector<std::pair<size_t, size_t>> pairs;  // key and value, for maps
  };

 public:
  // A node of the tree; valid while the tree lives.
  class Node {
   public:
    bool IsNull() const { return data().kind == Kind::kNull; }
    bool IsScalar() const { return data().kind == Kind::kScalar; }
    bool IsSequence() const { return data().kind == Kind::kSequence; }
    bool IsMap() const { return data().kind == Kind::kMap; }
    // The text of a scalar; "" for anything else (as yaml-cpp's Node::Scalar).
    const std::string& Scalar() const { return data().scalar; }
    // yaml-cpp's tag: "?" for a plain scalar, "!" for a quoted one, or the explicit tag.
    const std::string& Tag() const { return data().tag; }
    const YAML::Mark& Mark() const { return data().mark; }
    // A map's pairs in file order, duplicates included; empty for anything else.
    std::vector<std::pair<Node, Node>> Pairs() const;

   private:
    friend class YamlTree;
    Node(const YamlTree* tree, size_t index) : tree_(tree), index_(index) {}
    const Data& data() const { return tree_->nodes_[index_]; }
    const YamlTree* tree_;
    size_t index_;
  };

  // Reads the first document of `text` (`*found` false for an empty stream). A second document is
  // an error, as in PyYAML's safe_load ("FILE:LINE: invalid YAML: ..."). Throws YAML::Exception on
  // malformed YAML.
  Status Load(const std::string& text, const std::string& file, bool* found);

  // The first document's root; only after Load found one.
  Node root() const { return Node(this, root_); }

 private:
  friend class YamlBuilder;
  std::vector<Data> nodes_;
  size_t root_ = 0;
};

}  // namespace palettize
