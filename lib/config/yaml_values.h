// Reading YAML values as coremltools' from_yaml (PyYAML, YAML 1.1) does, strictly: decimal ints,
// YAML 1.1 bools, the line an error points at, and how an error shows a value.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "config/yaml_tree.h"

namespace palettize {

using Node = YamlTree::Node;

std::string Lower(std::string s);

// Errors are one line each: user text (values, op names) may hold newlines or control bytes.
std::string OneLine(const std::string& s);

int LineOf(const Node& n);

// Where a value's error points: an implicit null's mark is the next token (often the next line),
// and a block collection's mark is its first child, so both point at their key instead.
int ValueLine(const Node& key, const Node& value);

// yaml-cpp keeps a plain scalar's tag as "?" and a quoted one's as "!"; only a plain (or
// explicitly !!int / !!bool tagged) scalar may be read as a number or bool, as in PyYAML.
bool IsPlain(const Node& n, const char* explicit_tag);

// Decimal only: PyYAML (YAML 1.1) reads 010 as octal 8 and 0x10 as 16; refusing those avoids
// disagreeing with coremltools about what a file means.
bool AsInt(const Node& n, int64_t* out);

// PyYAML's YAML 1.1 booleans, which is what coremltools' from_yaml accepts.
bool AsBool(const Node& n, bool* out);

// How an error shows a value: as written, quoted if it was quoted (so `"6"` explains itself).
std::string Show(const Node& n);

// A mapping's pairs in file order, duplicates included.
std::vector<std::pair<Node, Node>> Pairs(const Node& map);

}  // namespace palettize
