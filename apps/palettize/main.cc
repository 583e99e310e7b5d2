// palettize: library plus main(). Parses flags into the library's option structs, calls it, and
// maps the returned Status to an exit code. Only this file decides exit codes and prints errors.
#include <cstdio>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "palettize/inspect.h"
#include "palettize/status.h"

namespace {

// Exit codes, documented in --help and README.md.
constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitInvalidInput = 2;
constexpr int kExitIO = 3;

int Fail(const palettize::Status& st) {
  std::fprintf(stderr, "palettize: %s\n", st.message().c_str());
  switch (st.code()) {
    case palettize::Status::Code::kOk: return kExitOk;
    case palettize::Status::Code::kInvalidArgument: return kExitUsage;
    case palettize::Status::Code::kInvalidInput: return kExitInvalidInput;
    case palettize::Status::Code::kIOError: return kExitIO;
  }
  return kExitInvalidInput;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"palettize: compress Core ML models (.mlpackage ML Programs) by weight palettization."};
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success, 1 usage error (bad flag or option), 2 invalid input (malformed or\n"
      "inconsistent model), 3 I/O failure (missing file, unwritable output).");

  std::string model;
  bool as_json = false;
  palettize::InspectOptions inspect_options;
  CLI::App* inspect = app.add_subcommand(
      "inspect", "List every const weight of a model: dtype, shape, storage, unique values, "
                 "sparsity, consuming ops, and whether it would be palettized.");
  inspect->add_option("MODEL", model, "The .mlpackage to read")->required();
  inspect->add_flag("--json", as_json, "Print JSON (schema in docs/format.md) instead of a table");
  inspect
      ->add_option("--weight-threshold", inspect_options.weight_threshold,
                   "Weights with this many elements or fewer are not palettization candidates "
                   "(coremltools' weight_threshold); every weight is listed either way")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitUsage;
  }

  if (inspect->parsed()) {
    palettize::ModelInfo info;
    palettize::Status st = palettize::Inspect(model, inspect_options, &info);
    if (!st.ok()) return Fail(st);
    std::cout << (as_json ? palettize::InspectToJson(info) : palettize::InspectToTable(info));
    std::cout.flush();
    if (!std::cout) return Fail(palettize::Status::IOError("standard output: write failed"));
  }
  return kExitOk;
}
