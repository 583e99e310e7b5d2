// Path rules (lib/util/path_rules.h): path identity through every spelling, and the refusals
// of issue 12 item 1 (D1-D3, --force only onto an output of its own kind).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "test_util.h"
#include "util/path_rules.h"

using namespace palettize;
namespace fs = std::filesystem;

namespace {

// root/zoo/a.mlpackage/{Manifest.json, Data/weights/weight.bin}, root/zoo/b.mlpackage (a
// sibling package), root/zoo/notes.txt, and root/link -> root/zoo.
struct Zoo {
  TempDir tmp;
  std::string root = tmp.path(), zoo = root + "/zoo", a = zoo + "/a.mlpackage", b = zoo + "/b.mlpackage";
  Zoo() {
    for (const std::string& p : {a, b}) {
      fs::create_directories(p + "/Data/weights");
      std::ofstream(p + "/Manifest.json") << "{}";
      std::ofstream(p + "/Data/weights/weight.bin") << "w";
    }
    std::ofstream(zoo + "/notes.txt") << "n";
    fs::create_directory_symlink(zoo, root + "/link");
  }
  // compress a -o `out` [--report `report`]
  RunPaths Run(const std::string& out, const std::string& report = "", bool force = true) const {
    RunPaths r;
    r.inputs = {{"the input", a}};
    r.outputs = {{out, OutputKind::kPackage}};
    r.report = report;
    r.overwrite = force;
    return r;
  }
};

std::string Message(const RunPaths& r) { return CheckRunPaths(r).message(); }

}  // namespace

TEST_CASE("ResolvePath: absolute, with . .. // and trailing slashes gone, links resolved", "[path_rules]") {
  Zoo z;
  const std::string root = ResolvePath(z.root);  // $TMPDIR may itself be a link
  CHECK(ResolvePath(z.zoo) == root + "/zoo");
  CHECK(ResolvePath(z.zoo + "/") == root + "/zoo");
  CHECK(ResolvePath(z.root + "//zoo///a.mlpackage//") == root + "/zoo/a.mlpackage");
  CHECK(ResolvePath(z.zoo + "/./b.mlpackage/../a.mlpackage") == root + "/zoo/a.mlpackage");
  CHECK(ResolvePath(z.root + "/link/a.mlpackage") == root + "/zoo/a.mlpackage");
  // ".." after a link leaves the link's target, as the kernel does, not the link's folder.
  fs::create_directories(z.root + "/deep/er");
  fs::create_directory_symlink(z.root + "/deep/er", z.zoo + "/er");
  CHECK(ResolvePath(z.zoo + "/er/..") == root + "/deep");
  // The part that does not exist yet is appended, with . and .. applied lexically.
  CHECK(ResolvePath(z.root + "/link/new/./x/../o.mlpackage/") == root + "/zoo/new/o.mlpackage");
  CHECK(ResolvePath("/") == "/");
  const std::string cwd = fs::current_path().string();
  CHECK(ResolvePath("no-such-thing") == ResolvePath(cwd) + "/no-such-thing");
}

TEST_CASE("SamePath and PathInside through .., links, missing tails, // and trailing slashes",
          "[path_rules]") {
  Zoo z;
  CHECK(SamePath(z.a, z.a + "/"));
  CHECK(SamePath(z.a, z.root + "//link/./a.mlpackage"));
  CHECK(SamePath(z.a, z.zoo + "/b.mlpackage/../a.mlpackage"));
  CHECK_FALSE(SamePath(z.a, z.b));
  CHECK(SamePath(z.zoo + "/new", z.root + "/link/new/"));  // neither exists
  CHECK_FALSE(SamePath(z.zoo + "/new", z.zoo + "/new2"));
  // A hard link is the same file under another name.
  fs::create_hard_link(z.zoo + "/notes.txt", z.root + "/hard.txt");
  CHECK(SamePath(z.zoo + "/notes.txt", z.root + "/hard.txt"));

  CHECK(PathInside(z.a + "/Data", z.a));
  CHECK(PathInside(z.a + "/Data/weights/weight.bin", z.zoo + "/"));
  CHECK(PathInside(z.root + "/link/a.mlpackage/Manifest.json", z.zoo));
  CHECK(PathInside(z.a + "/Data/weights/x/y/o.mlpackage", z.root + "/link//a.mlpackage"));
  CHECK(PathInside(z.a, z.root + "/link/.."));
  CHECK_FALSE(PathInside(z.a, z.a));
  CHECK_FALSE(PathInside(z.zoo, z.a));
  CHECK_FALSE(PathInside(z.root + "/zoo2/x", z.zoo));  // a name that merely starts the same
  CHECK(PathInside(z.root + "/new/x", z.root + "/new"));
}

TEST_CASE("D1: an output that holds an input is refused", "[path_rules]") {
  Zoo z;
  CHECK(CheckRunPaths(z.Run(z.zoo)).code() == Status::Code::kInvalidArgument);
  CHECK(Message(z.Run(z.zoo)) == z.zoo + ": the output would replace the folder holding the input " + z.a);
  CHECK(Message(z.Run(z.root + "/link/")) ==
        z.root + "/link/: the output would replace the folder holding the input " + z.a);
  CHECK(Message(z.Run(z.root)) == z.root + ": the output would replace the folder holding the input " + z.a);
}

TEST_CASE("D2: an output that is or lies inside an input is refused", "[path_rules]") {
  Zoo z;
  CHECK(Message(z.Run(z.zoo + "/b.mlpackage/../a.mlpackage")) ==
        z.zoo + "/b.mlpackage/../a.mlpackage: the output is the input " + z.a + "; write to another path");
  CHECK(Message(z.Run(z.a)) == z.a + ": the output is the input; write to another path");
  for (const std::string& inside : {z.a + "/Data", z.a + "/Manifest.json", z.a + "/Data/o.mlpackage",
                                    z.a + "/Data/weights/x/y/z/o.mlpackage"}) {
    for (bool force : {false, true}) {
      const Status st = CheckRunPaths(z.Run(inside, "", force));
      CHECK(st.code() == Status::Code::kInvalidArgument);
      CHECK(st.message() == inside + ": the output lies inside the input " + z.a + "; write outside it");
    }
  }
  RunPaths batch;
  batch.inputs = {{"the input", z.a}};
  batch.outputs = {{z.a + "/out", OutputKind::kFolder}};
  CHECK(Message(batch) == z.a + "/out: out_dir lies inside the input " + z.a + "; write outside it");
  // The other inputs count too.
  RunPaths sens = z.Run(z.root + "/o.mlpackage");
  sens.inputs.push_back({"the --sensitivity file", z.zoo + "/notes.txt"});
  CHECK(CheckRunPaths(sens).ok());
  sens.outputs = {{z.zoo + "/notes.txt/o.safetensors", OutputKind::kFile}};
  CHECK(Message(sens) == z.zoo + "/notes.txt/o.safetensors: the output lies inside the --sensitivity file " +
                             z.zoo + "/notes.txt; write outside it");
}

TEST_CASE("D3: a report that is or lies inside an input or an output is refused", "[path_rules]") {
  Zoo z;
  const std::string out = z.root + "/o.mlpackage";
  const std::string bin = z.a + "/Data/weights/weight.bin";
  CHECK(Message(z.Run(out, bin)) == bin + ": the report lies inside the input " + z.a + "; write outside it");
  CHECK(Message(z.Run(out, out)) == out + ": the report is the output; write to another path");
  CHECK(Message(z.Run(out, out + "/r.json")) ==
        out + "/r.json: the report lies inside the output " + out + "; write outside it");
  RunPaths ck;
  ck.inputs = {{"the input", z.zoo + "/notes.txt"}, {"the --config file", z.root + "/c.yaml"}};
  ck.outputs = {{z.root + "/b.safetensors", OutputKind::kFile}};
  ck.report = z.root + "/link/notes.txt";
  CHECK(Message(ck) ==
        ck.report + ": the report is the input " + z.zoo + "/notes.txt; write to another path");
  ck.report = z.root + "/c.yaml";
  CHECK(Message(ck) == ck.report + ": the report is the --config file; write to another path");
  ck.report = z.root + "/b.safetensors";
  CHECK(Message(ck) == ck.report + ": the report is the output; write to another path");
  // Into --output-dir is where a batch report goes; onto it is not.
  RunPaths batch;
  batch.inputs = {{"the input", z.a}};
  batch.outputs = {{z.root + "/out", OutputKind::kFolder},
                   {z.root + "/out/a.mlpackage", OutputKind::kPackage}};
  batch.report = z.root + "/out/r.json";
  CHECK(CheckRunPaths(batch).code() == Status::Code::kIOError);  // out/ does not exist yet
  fs::create_directory(z.root + "/out");
  CHECK(CheckRunPaths(batch).ok());
  batch.report = z.root + "/out";
  CHECK(Message(batch) == batch.report + ": the report is out_dir; write to another path");
  batch.report = z.root + "/out/a.mlpackage/r.json";
  CHECK(Message(batch) == batch.report + ": the report lies inside the output " + z.root +
                              "/out/a.mlpackage; write outside it");
}

TEST_CASE("with --force, only an existing output of the same kind is replaced", "[path_rules]") {
  Zoo z;
  const std::string folder = z.root + "/plain", file = z.root + "/plain.txt";
  fs::create_directory(folder);
  std::ofstream(file) << "x";
  for (bool force : {false, true}) {
    for (const std::string& p : {folder, file}) {
      const Status st = CheckRunPaths(z.Run(p, "", force));
      CHECK(st.code() == Status::Code::kInvalidArgument);
      CHECK(st.message() ==
            p + ": already exists and is not a package (a folder holding Manifest.json); overwrite "
                "replaces only a package");
    }
  }
  CHECK(Message(z.Run(z.b, "", false)) == z.b + ": already exists (use overwrite to replace it)");
  CHECK(CheckRunPaths(z.Run(z.b, "", true)).ok());
  RunPaths dry = z.Run(z.b, "", false);
  dry.dry_run = true;
  CHECK(CheckRunPaths(dry).ok());

  RunPaths ck;
  ck.inputs = {{"the input", z.zoo + "/notes.txt"}};
  ck.outputs = {{folder, OutputKind::kFile}};
  ck.overwrite = true;
  CHECK(Message(ck) == folder + ": already exists and is not a regular file; overwrite replaces only a file");
  ck.outputs = {{file, OutputKind::kFile}};
  CHECK(CheckRunPaths(ck).ok());
  // Renaming a checkpoint over a device would replace the device itself.
  ck.outputs = {{"/dev/null", OutputKind::kFile}};
  CHECK(Message(ck) == "/dev/null: already exists and is not a regular file; overwrite replaces only a file");

  // A report replaces a regular file or is written into a special file; never a folder.
  CHECK(CheckRunPaths(z.Run(z.root + "/o.mlpackage", file)).ok());
  CHECK(CheckRunPaths(z.Run(z.root + "/o.mlpackage", "/dev/null")).ok());
  CHECK(Message(z.Run(z.root + "/o.mlpackage", folder)) == folder + ": the report is a folder; name a file");
  const Status st = CheckRunPaths(z.Run(z.root + "/o.mlpackage", z.root + "/no/r.json"));
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message() == z.root + "/no/r.json: cannot write report: no folder " + z.root + "/no");

  RunPaths batch;
  batch.outputs = {{file, OutputKind::kFolder}};
  CHECK(CheckRunPaths(batch).message() == file + ": not a folder");
}
