// The one place every JSON document palettize prints or writes is turned into text (inspect
// --json, compare --json, and the compress, batch and checkpoint reports).
//
// JSON text must be UTF-8, but paths and names are bytes: a folder named with byte 0xff, or a
// MIL op name a model stores, need not be UTF-8. Each byte that is not part of a valid UTF-8
// sequence is written as the four characters \xHH (lowercase hex), exactly what Python's
// bytes.decode("utf-8", "backslashreplace") gives (docs/format.md, "Text in JSON").
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace palettize {

// `s` with every byte outside a valid UTF-8 sequence replaced by \xHH. Valid input is unchanged.
std::string EscapeInvalidUtf8(const std::string& s);

// doc.dump(2) plus a newline, with every string and object key escaped by EscapeInvalidUtf8.
// Never throws nlohmann's invalid-UTF-8 error.
std::string JsonText(const nlohmann::ordered_json& doc);

}  // namespace palettize
