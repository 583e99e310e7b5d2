// The tree and its one-pass builder: yaml_tree.h.
#include "config/yaml_tree.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <sstream>

namespace palettize {

std::vector<std::pair<YamlTree::Node, YamlTree::Node>> YamlTree::Node::Pairs() const {
  std::vector<std::pair<Node, Node>> out;
  out.reserve(data().pairs.size());
  for (const auto& [k, v] : data().pairs) out.emplace_back(Node(tree_, k), Node(tree_, v));
  return out;
}

// Builds the first document's nodes from parser events, and notes where every document starts
// and where its root is (for the error about a second document).
class YamlBuilder : public YAML::EventHandler {
 public:
  struct Document {
    YAML::Mark start, root;
    bool has_root = false;
  };

  explicit YamlBuilder(YamlTree* tree) : tree_(tree) {}
  const std::vector<Document>& docs() const { return docs_; }

  void OnDocumentStart(const YAML::Mark& mark) override { docs_.push_back({mark, mark}); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (Building(mark)) Attach(New(YamlTree::Kind::kNull, mark, anchor, ""));
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    // yaml-cpp's parser refuses an unknown anchor before this is called.
    if (Building(mark) && anchor < anchors_.size()) Attach(anchors_[anchor]);
  }
  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (!Building(mark)) return;
    const size_t i = New(YamlTree::Kind::kScalar, mark, anchor, tag);
    tree_->nodes_[i].scalar = value;
    Attach(i);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    if (Building(mark)) open_.push_back({New(YamlTree::Kind::kSequence, mark, anchor, tag), kNoKey});
  }
  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    if (Building(mark)) open_.push_back({New(YamlTree::Kind::kMap, mark, anchor, tag), kNoKey});
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapEnd() override { Close(); }

 private:
  static constexpr size_t kNoKey = SIZE_MAX;
  struct Open {
    size_t node;
    size_t key;  // a map's key waiting for its value, or kNoKey
  };

  // Whether the event belongs to the first document; the first node of each document is its root.
  bool Building(const YAML::Mark& mark) {
    if (docs_.empty()) return false;
    Document& doc = docs_.back();
    if (!doc.has_root) {
      doc.root = mark;
      doc.has_root = true;
    }
    return docs_.size() == 1;
  }
  size_t New(YamlTree::Kind kind, const YAML::Mark& mark, YAML::anchor_t anchor, const std::string& tag) {
    tree_->nodes_.emplace_back();
    YamlTree::Data& d = tree_->nodes_.back();
    d.kind = kind;
    d.mark = mark;
    d.tag = tag;
    const size_t i = tree_->nodes_.size() - 1;
    if (anchor != YAML::NullAnchor) {
      if (anchors_.size() <= anchor) anchors_.resize(anchor + 1);
      anchors_[anchor] = i;
    }
    return i;
  }
  // A finished node becomes the root, a map's key, a map's value, or (uncounted) a sequence item.
  void Attach(size_t i) {
    if (open_.empty()) {
      tree_->root_ = i;
      return;
    }
    Open& top = open_.back();
    if (tree_->nodes_[top.node].kind != YamlTree::Kind::kMap) return;
    if (top.key == kNoKey) {
      top.key = i;
    } else {
      tree_->nodes_[top.node].pairs.emplace_back(top.key, i);
      top.key = kNoKey;
    }
  }
  void Close() {
    if (docs_.size() != 1 || open_.empty()) return;
    const size_t i = open_.back().node;
    open_.pop_back();
    Attach(i);
  }

  YamlTree* tree_;
  std::vector<Document> docs_;
  std::vector<Open> open_;
  std::vector<size_t> anchors_;
};

// Only the first two documents are read: yaml-cpp 0.7's LoadAll loops forever, allocating, on
// some malformed streams (a lone ","), returning a null document each turn without reading on;
// such a document starts where the one before it did.
Status YamlTree::Load(const std::string& text, const std::string& file, bool* found) {
  nodes_.clear();
  root_ = 0;
  *found = false;
  std::stringstream in(text);
  YamlBuilder builder(this);
  YAML::Parser parser(in);
  int documents = 0;
  while (documents < 2 && parser.HandleNextDocument(builder)) ++documents;
  if (documents == 2) {
    const YamlBuilder::Document& second = builder.docs().back();
    const std::string line = std::to_string(second.root.line >= 0 ? second.root.line + 1 : 1);
    if (builder.docs().size() == 2 && second.start.pos == builder.docs()[0].start.pos)
      return Status::InvalidArgument(file + ":" + line + ": invalid YAML: a token that starts no node");
    return Status::InvalidArgument(file + ":" + line +
                                   ": invalid YAML: expected a single document, found a second one");
  }
  *found = documents == 1 && !nodes_.empty();
  return Status::OK();
}

}  // namespace palettize
