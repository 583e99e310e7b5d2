// The in-memory Env of memory_env.h: faults, crashes, and building and reading the tree.
#include <fcntl.h>
#include <stdio.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "memory_env.h"
#include "memory_env_node.h"

namespace palettize {

namespace fs = std::filesystem;

// ---- Faults and crashes.

void MemoryEnv::FailCall(FaultOp op, int nth, int err) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_op_ = op, fail_nth_ = nth, fail_err_ = err;
}

void MemoryEnv::FailMutation(int nth, int err) {
  std::lock_guard<std::mutex> lock(mu_);
  fail_any_nth_ = nth, fail_err_ = err;
}

void MemoryEnv::SetSpaceLimit(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_limit_ = bytes;
}

void MemoryEnv::CrashAtMutation(int nth) {
  std::lock_guard<std::mutex> lock(mu_);
  crash_at_ = nth;
}

void MemoryEnv::SimulateCrash() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Node*> stack = {root_.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->kind == Kind::kFile) n->data = n->synced;
    for (auto& [name, child] : n->children) stack.push_back(child.get());
  }
  fds_.clear();
  crash_at_ = 0;
  crashed_ = false;
  fail_op_ = FaultOp::kNone;
  fail_any_nth_ = 0;
}

void MemoryEnv::SyncAll() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Node*> stack = {root_.get()};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    if (n->kind == Kind::kFile) n->synced = n->data;
    for (auto& [name, child] : n->children) stack.push_back(child.get());
  }
}

uint64_t MemoryEnv::used_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return UsedBytes(*root_);
}

void MemoryEnv::ResetCounts() {
  std::lock_guard<std::mutex> lock(mu_);
  std::fill(std::begin(counts_), std::end(counts_), 0);
  mutations_ = 0;
  fired_ = false;
}

int MemoryEnv::calls(FaultOp op) const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_[size_t(op)];
}

int MemoryEnv::mutations() const {
  std::lock_guard<std::mutex> lock(mu_);
  return mutations_;
}

bool MemoryEnv::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

size_t MemoryEnv::open_descriptors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fds_.size();
}

size_t MemoryEnv::open_maps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return maps_.size();
}

// ---- Building and reading the tree.

MemoryEnv::NodeP MemoryEnv::Ensure(const std::string& path) {
  NodeP cur = root_;
  for (const std::string& part : SplitPath(path)) {
    NodeP& child = cur->children[part];
    if (child == nullptr) {
      child = NewNode(Kind::kFolder, 0755);
      child->parent = cur;
      child->name = part;
    }
    if (child->kind != Kind::kFolder) throw std::runtime_error(path + ": a part is not a folder");
    cur = child;
  }
  return cur;
}

namespace {
std::pair<std::string, std::string> ParentAndName(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return {"/", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}
}  // namespace

void MemoryEnv::AddFile(const std::string& path, const std::string& bytes, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto [dir, name] = ParentAndName(path);
  NodeP n = NewNode(Kind::kFile, mode);
  n->data = n->synced = bytes;
  Attach(Ensure(dir), name, n);
}

void MemoryEnv::AddFolder(const std::string& path, mode_t mode) {
  std::lock_guard<std::mutex> lock(mu_);
  Ensure(path)->perm = mode & 07777;
}

void MemoryEnv::AddLink(const std::string& path, const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto [dir, name] = ParentAndName(path);
  NodeP n = NewNode(Kind::kLink, 0777);
  n->data = target;
  Attach(Ensure(dir), name, n);
}

void MemoryEnv::AddSpecial(const std::string& path, Kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto [dir, name] = ParentAndName(path);
  Attach(Ensure(dir), name, NewNode(kind, kind == Kind::kFifo ? 0644 : 0666));
}

void MemoryEnv::CopyIn(const std::string& real_path, const std::string& to) {
  const fs::file_status s = fs::symlink_status(real_path);
  const mode_t mode = mode_t(s.permissions()) & 07777;
  if (fs::is_symlink(s)) {
    AddLink(to, fs::read_symlink(real_path).string());
  } else if (fs::is_directory(s)) {
    AddFolder(to, mode);
    for (const auto& e : fs::directory_iterator(real_path))
      CopyIn(e.path().string(), to + "/" + e.path().filename().string());
  } else if (fs::is_regular_file(s)) {
    std::ifstream in(real_path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) throw std::runtime_error(real_path + ": cannot read");
    AddFile(to, bytes, mode);
  } else {
    throw std::runtime_error(real_path + ": not a file, folder or link");
  }
}

void MemoryEnv::CopyOut(const std::string& path, const std::string& real_to) {
  NodeP node;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Where w;
    if (Find(AT_FDCWD, path, false, &w) != 0 || w.node == nullptr)
      throw std::runtime_error(path + ": missing");
    node = w.node;
  }
  struct Copier {
    static void Copy(const Node& n, const fs::path& to) {
      switch (n.kind) {
        case Kind::kFolder:
          fs::create_directory(to);
          for (const auto& [name, child] : n.children) Copy(*child, to / name);
          break;
        case Kind::kLink: fs::create_symlink(n.data, to); break;
        case Kind::kFile: {
          std::ofstream out(to, std::ios::binary);
          out.write(n.data.data(), std::streamsize(n.data.size()));
          if (!out) throw std::runtime_error(to.string() + ": cannot write");
          break;
        }
        default: throw std::runtime_error(to.string() + ": a special file is not copied out");
      }
      // After the children: a folder's mode may forbid writing into it.
      if (n.kind != Kind::kLink) fs::permissions(to, fs::perms(n.perm), fs::perm_options::replace);
    }
  };
  std::lock_guard<std::mutex> lock(mu_);
  Copier::Copy(*node, real_to);
}

void MemoryEnv::SnapshotUnder(const NodeP& n, const std::string& rel,
                              std::map<std::string, std::string>* out) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o ", unsigned(n->perm));
  std::string& entry = (*out)[rel.empty() ? "." : rel];
  switch (n->kind) {
    case Kind::kFile: entry = mode + n->data; break;
    case Kind::kFolder: entry = std::string(mode) + "<folder>"; break;
    case Kind::kLink: entry = "<link> " + n->data; break;
    case Kind::kFifo: entry = std::string(mode) + "<fifo>"; break;
    case Kind::kFullDevice: entry = std::string(mode) + "<device>"; break;
  }
  for (const auto& [name, child] : n->children)
    SnapshotUnder(child, rel.empty() ? name : rel + "/" + name, out);
}

std::map<std::string, std::string> MemoryEnv::Snapshot(const std::string& root) {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::string> out;
  Where w;
  if (Find(AT_FDCWD, root, false, &w) == 0 && w.node != nullptr) SnapshotUnder(w.node, "", &out);
  return out;
}

std::vector<std::string> MemoryEnv::AllPaths() {
  std::map<std::string, std::string> all = Snapshot("/");
  std::vector<std::string> paths;
  for (const auto& [rel, entry] : all)
    if (rel != ".") paths.push_back("/" + rel);
  return paths;
}

bool MemoryEnv::Exists(const std::string& path) {
  struct stat st;
  return Lstat(path, &st) == 0;
}

std::string MemoryEnv::Contents(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  Where w;
  if (Find(AT_FDCWD, path, true, &w) != 0 || w.node == nullptr || w.node->kind != Kind::kFile) return "";
  return w.node->data;
}

}  // namespace palettize
