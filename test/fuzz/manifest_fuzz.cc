// Fuzzes the Manifest.json parser (lib/package/manifest): the input is the file's text. A
// manifest that parses must serialize to text that parses again to the same items.
#include <string>

#include "fuzz_targets.h"
#include "package/manifest.h"

namespace palettize {

int FuzzManifest(const uint8_t* data, size_t size) {
  Manifest m;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (!m.Parse(text, "Manifest.json").ok()) return 0;
  (void)m.root();
  Manifest again;
  if (!again.Parse(m.Serialize(), "Manifest.json").ok()) __builtin_trap();
  if (again.items().size() != m.items().size() || again.root().id != m.root().id) __builtin_trap();
  for (size_t i = 0; i < m.items().size(); ++i)
    if (again.items()[i].path != m.items()[i].path) __builtin_trap();
  return 0;
}

}  // namespace palettize
