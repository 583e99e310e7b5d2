// The exception boundary (util/guard.h) and the escaping of non-UTF-8 text in JSON
// (report/json_text.h): issue 12, "no exception escapes" and C1.
#include <catch2/catch.hpp>

#include <filesystem>
#include <ios>
#include <new>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/json_text.h"
#include "util/guard.h"

using namespace palettize;

TEST_CASE("Guarded passes a Status through and turns each exception into one") {
  CHECK(Guarded("f", [] { return Status::OK(); }).ok());
  const Status passed = Guarded("f", [] { return Status::InvalidArgument("f: bad"); });
  CHECK(passed.code() == Status::Code::kInvalidArgument);
  CHECK(passed.message() == "f: bad");

  const Status range = Guarded("m.mlpackage", []() -> Status {
    return Status::InvalidInput(std::to_string(std::vector<int>().at(3)));
  });
  CHECK(range.code() == Status::Code::kInvalidInput);
  CHECK(range.message().rfind("m.mlpackage: unexpected error: ", 0) == 0);

  const Status oom = Guarded("m.mlpackage", []() -> Status { throw std::bad_alloc(); });
  CHECK(oom.code() == Status::Code::kIOError);
  CHECK(oom.message() == "m.mlpackage: out of memory");

  const Status fs = Guarded("d", []() -> Status {
    throw std::filesystem::filesystem_error("cannot copy",
                                            std::make_error_code(std::errc::no_space_on_device));
  });
  CHECK(fs.code() == Status::Code::kIOError);
  CHECK(fs.message().rfind("d: ", 0) == 0);

  const Status stream = Guarded("c.yaml", []() -> Status { throw std::ios_base::failure("read"); });
  CHECK(stream.code() == Status::Code::kIOError);

  const Status other = Guarded("", []() -> Status { throw 7; });
  CHECK(other.code() == Status::Code::kInvalidInput);
  CHECK(other.message() == "unexpected error of unknown kind");

  const Status json = Guarded("r.json", [] { return Status::InvalidInput(nlohmann::json("\xff").dump()); });
  CHECK(json.message().find("type_error.316") != std::string::npos);
}

TEST_CASE("EscapeInvalidUtf8 writes each byte outside a valid sequence as \\xHH") {
  CHECK(EscapeInvalidUtf8("plain/ascii") == "plain/ascii");
  CHECK(EscapeInvalidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  CHECK(EscapeInvalidUtf8("d\xff\xfe/x") == "d\\xff\\xfe/x");
  CHECK(EscapeInvalidUtf8("\xc3") == "\\xc3");  // cut short at the end
  CHECK(EscapeInvalidUtf8("\xe2\x82"
                          "A") == "\\xe2\\x82A");                          // cut short before ASCII
  CHECK(EscapeInvalidUtf8("\xc0\x80") == "\\xc0\\x80");                    // overlong NUL
  CHECK(EscapeInvalidUtf8("\xe0\x80\x80") == "\\xe0\\x80\\x80");           // overlong
  CHECK(EscapeInvalidUtf8("\xed\xa0\x80") == "\\xed\\xa0\\x80");           // a surrogate
  CHECK(EscapeInvalidUtf8("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  CHECK(EscapeInvalidUtf8("\xf4\x8f\xbf\xbf") == "\xf4\x8f\xbf\xbf");      // U+10FFFF itself
}

TEST_CASE("JsonText escapes strings and keys at any depth and is valid JSON") {
  nlohmann::ordered_json doc = {
      {"path", "a\xff"}, {"list", {"ok", "b\xfe"}}, {"nested", {{"k\x80", 1}, {"k", "v"}}}};
  const std::string text = JsonText(doc);
  const nlohmann::json back = nlohmann::json::parse(text);
  CHECK(back["path"] == "a\\xff");
  CHECK(back["list"][1] == "b\\xfe");
  CHECK(back["nested"]["k\\x80"] == 1);
  CHECK(back["nested"]["k"] == "v");
  CHECK(text.back() == '\n');
  // Valid documents print as nlohmann prints them, key order kept.
  const nlohmann::ordered_json valid = {{"z", 1}, {"a", "\xc3\xa9"}};
  CHECK(JsonText(valid) == valid.dump(2) + "\n");
}
