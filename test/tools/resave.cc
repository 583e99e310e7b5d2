// resave IN OUT: loads a package with the library and writes it back unchanged, for the
// round-trip tests (test/oracle/test_roundtrip_oracle.py).
#include <cstdio>

#include "palettize/package_io.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: resave IN.mlpackage OUT.mlpackage\n");
    return 1;
  }
  palettize::Status st = palettize::RewritePackage(argv[1], argv[2], {});
  if (!st.ok()) {
    std::fprintf(stderr, "resave: %s\n", st.message().c_str());
    return 2;
  }
  return 0;
}
