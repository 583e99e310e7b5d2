// Status: the outcome of a library call. The library never exits or prints errors itself; it
// returns a Status whose message names the file and field, and apps/ maps the code to an exit code.
#pragma once

#include <string>
#include <utility>

namespace palettize {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // the caller asked for something impossible (bad option, bad config)
    kInvalidInput,     // a model file is malformed, truncated or inconsistent
    kIOError,          // the file system refused (missing file, unwritable folder, full disk)
  };

  Status() = default;

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status InvalidInput(std::string msg) { return Status(Code::kInvalidInput, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message", for adding context at each level.
  Status WithContext(const std::string& context) const {
    if (ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

}  // namespace palettize

// Returns early from the enclosing function when expr yields a non-OK Status.
#define PALETTIZE_RETURN_IF_ERROR(expr) \
  do {                                  \
    ::palettize::Status _st = (expr);   \
    if (!_st.ok()) return _st;          \
  } while (0)
