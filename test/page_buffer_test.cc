// PageBuffer: writable memory of the size asked, moved without copying, freed once.
#include <catch2/catch.hpp>

#include <cstring>
#include <utility>

#include "util/page_buffer.h"

using palettize::PageBuffer;

TEST_CASE("page buffer: the size asked, writable to its last byte, moved and freed", "[util]") {
  const size_t bytes = (size_t(3) << 20) + 5;  // not a whole number of pages
  PageBuffer a(bytes);
  REQUIRE(a.data() != nullptr);
  REQUIRE(a.size() == bytes);
  std::memset(a.data(), 0xAB, bytes);
  REQUIRE(a.data()[bytes - 1] == 0xAB);
  unsigned char* const p = a.data();
  PageBuffer b(std::move(a));
  REQUIRE(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  REQUIRE(a.size() == 0);
  REQUIRE(b.data() == p);
  REQUIRE(b.data()[0] == 0xAB);
  PageBuffer c(4096);
  c = std::move(b);  // c's own pages are freed, b's taken
  REQUIRE(c.data() == p);
  REQUIRE(c.size() == bytes);
  c = PageBuffer();
  REQUIRE(c.data() == nullptr);
}
