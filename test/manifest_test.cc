// Manifest.json: validation errors and that every entry survives a rewrite in order.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "package/manifest.h"

using namespace palettize;

namespace {

const char* kManifest = R"({
    "fileFormatVersion": "1.0.0",
    "itemInfoEntries": {
        "B": {"author": "com.apple.CoreML", "description": "CoreML Model Specification",
              "name": "model.mlmodel", "path": "com.apple.CoreML/model.mlmodel"},
        "A": {"author": "com.example.tool", "name": "notes.txt", "path": "com.example.tool/notes.txt",
              "extra": {"kept": [1, 2, 3]}}
    },
    "rootModelIdentifier": "B",
    "futureKey": true
})";

std::string ParseError(const std::string& text) {
  Manifest m;
  return m.Parse(text, "M.json").message();
}

}  // namespace

TEST_CASE("manifest finds the root by rootModelIdentifier and keeps every entry") {
  Manifest m;
  REQUIRE(m.Parse(kManifest, "M.json").ok());
  REQUIRE(m.items().size() == 2);
  CHECK(m.root().path == "com.apple.CoreML/model.mlmodel");
  CHECK(m.items()[1].author == "com.example.tool");
  // Order and unknown keys are preserved.
  auto original = nlohmann::ordered_json::parse(kManifest);
  auto rewritten = nlohmann::ordered_json::parse(m.Serialize());
  CHECK(rewritten == original);
  CHECK(rewritten["itemInfoEntries"].begin().key() == "B");
}

TEST_CASE("manifest errors name the file and the field") {
  CHECK(ParseError("{") ==
        "M.json: invalid JSON: parse error at line 1, column 2: syntax error while parsing object "
        "key - unexpected end of input; expected string literal");
  CHECK(ParseError("[]") == "M.json: expected a JSON object");
  CHECK(ParseError(R"({"itemInfoEntries": {}, "rootModelIdentifier": "x"})") ==
        "M.json: fileFormatVersion: missing or not a string");
  CHECK(ParseError(R"({"fileFormatVersion": "2.0.0", "itemInfoEntries": {}, "rootModelIdentifier": "x"})") ==
        "M.json: fileFormatVersion: '2.0.0' is not supported (newest is 1.0.0)");
  CHECK(ParseError(R"({"fileFormatVersion": "1.0.0", "rootModelIdentifier": "x"})") ==
        "M.json: itemInfoEntries: missing or not an object");
  CHECK(ParseError(R"({"fileFormatVersion": "1.0.0", "itemInfoEntries": {}})") ==
        "M.json: rootModelIdentifier: missing or not a string");
  CHECK(ParseError(R"({"fileFormatVersion": "1.0.0", "itemInfoEntries": {"a": {"path": "m"}},
                       "rootModelIdentifier": "b"})") ==
        "M.json: rootModelIdentifier: 'b' is not in itemInfoEntries");
  CHECK(ParseError(R"({"fileFormatVersion": "1.0.0", "itemInfoEntries": {"a": {"path": "../../etc/passwd"}},
                       "rootModelIdentifier": "a"})") ==
        "M.json: itemInfoEntries.a.path: '../../etc/passwd' is not a relative path inside Data/");
  CHECK(ParseError(R"({"fileFormatVersion": "1.0.0", "itemInfoEntries": {"a": {"path": 7}},
                       "rootModelIdentifier": "a"})") == "M.json: itemInfoEntries.a.path: not a string");
  CHECK(ParseError(R"({"fileFormatVersion": "1.0.0", "itemInfoEntries": {"a": 1},
                       "rootModelIdentifier": "a"})") == "M.json: itemInfoEntries.a: not an object");
}
