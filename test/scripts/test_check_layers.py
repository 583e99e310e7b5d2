"""scripts/check-layers on small trees: each rule fails with its own line, and the repository's own
tree passes (its built objects: CTest check_layers)."""

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts/check-layers"

README = """# x

## Architecture

| layer | folders | what it owns |
|---|---|---|
| 1 | `util/` | helpers |
| 2 | `blob/`, `safetensors/` | formats |
| 3 | `mil/` | programs |

## Layout
| 9 | `ignored/` | a table outside the section |
"""


def tree(tmp_path, files):
    (tmp_path / "README.md").write_text(README)
    for d in ("util", "blob", "safetensors", "mil", "include/palettize"):
        (tmp_path / "lib" / d).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def run(root):
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True)
    return proc.returncode, proc.stderr.splitlines()[:-1] if proc.returncode else proc.stderr.splitlines()


def test_the_repository_passes():
    assert run(ROOT) == (0, [])


def test_downward_own_folder_and_public_includes_pass(tmp_path):
    root = tree(tmp_path, {
        "lib/mil/a.cc": '#include "mil/a.h"\n#include "blob/b.h"\n#include "util/u.h"\n'
                        '#include "palettize/status.h"\n#include "MIL.pb.h"\n#include <vector>\n',
        "lib/include/palettize/status.h": "#include <string>\n",
        "apps/main.cc": '#include "palettize/status.h"\n',
    })
    assert run(root) == (0, [])


def test_an_upward_include_names_file_line_and_layers(tmp_path):
    root = tree(tmp_path, {"lib/blob/r.cc": '// reader\n#include "blob/r.h"\n#include "mil/dtype.h"\n'})
    assert run(root) == (1, ["lib/blob/r.cc:3: blob includes mil (a higher layer)"])


def test_a_peer_include_fails(tmp_path):
    root = tree(tmp_path, {"lib/blob/r.h": '#include "safetensors/s.h"\n'})
    assert run(root) == (1, ["lib/blob/r.h:1: blob includes safetensors (a peer in layer 2)"])


def test_a_cycle_is_named(tmp_path):
    root = tree(tmp_path, {"lib/blob/r.h": '#include "mil/m.h"\n', "lib/mil/m.h": '#include "blob/r.h"\n'})
    assert run(root) == (1, ["lib/blob/r.h:1: blob includes mil (a higher layer)",
                             "include cycle between lib/ folders: blob -> mil -> blob"])


def test_folders_and_table_must_agree(tmp_path):
    root = tree(tmp_path, {"lib/extra/x.cc": "", "lib/util/u.cc": '#include "nowhere/n.h"\n'})
    (root / "lib/safetensors").rmdir()
    assert run(root) == (1, ["lib/extra/: in no layer of README.md's Architecture table",
                             "README.md: Architecture: lib/safetensors/ does not exist",
                             "lib/util/u.cc:1: util includes nowhere/n.h, not a lib/ folder"])


def test_public_headers_and_apps_use_only_the_public_api(tmp_path):
    root = tree(tmp_path, {"lib/include/palettize/api.h": '#include "mil/m.h"\n',
                           "apps/tool/main.cc": '#include "palettize/api.h"\n#include "util/u.h"\n'})
    assert run(root) == (1, [
        "lib/include/palettize/api.h:1: public header includes mil/m.h (only palettize/ headers)",
        "apps/tool/main.cc:2: apps/ includes util/u.h (only the public API, palettize/)"])


def test_no_table_fails(tmp_path):
    root = tree(tmp_path, {})
    (root / "README.md").write_text("# x\n")
    assert run(root) == (1, ["README.md: no layer table in the '## Architecture' section"])


def test_objects_using_a_higher_layers_definition_fail(tmp_path):
    # A lower layer calling an entry point a higher folder defines passes the include rules when
    # the declaration comes from a public header; the built objects show the call.
    compiler = shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler to build the objects")
    root = tree(tmp_path, {"lib/util/a.cc": "int Up();\nint Down() { return Up(); }\n",
                           "lib/mil/b.cc": "int Down();\nint Up() { return 1; }\nint Use() { return Down(); }\n"})
    objects = tmp_path / "objects"
    for folder, name in (("util", "a.cc"), ("mil", "b.cc")):
        (objects / folder).mkdir(parents=True)
        subprocess.run([compiler, "-c", str(root / "lib" / folder / name), "-o", str(objects / folder / (name + ".o"))],
                       check=True)
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root), "--objects", str(objects)],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stderr.splitlines()[:-1]) == (
        1, ["lib/util/a.cc: util uses Up(), defined in mil (a higher layer)"])
