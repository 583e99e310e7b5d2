// lib/eval's NumPy broadcasting and the registry's op list.
#include <catch2/catch.hpp>

#include "eval/broadcast.h"
#include "eval/op_registry.h"

using palettize::eval::BroadcastShape;
using palettize::eval::BroadcastStrides;
using palettize::eval::ForEachBroadcast;

TEST_CASE("broadcast shapes align at the last axis and stretch ones") {
  std::vector<int64_t> out;
  REQUIRE(BroadcastShape({2, 1, 4}, {3, 1}, &out));
  CHECK(out == std::vector<int64_t>{2, 3, 4});
  REQUIRE(BroadcastShape({}, {5}, &out));
  CHECK(out == std::vector<int64_t>{5});
  CHECK_FALSE(BroadcastShape({2, 3}, {4, 3}, &out));
  CHECK_FALSE(BroadcastShape({3}, {2}, &out));
}

TEST_CASE("broadcast offsets walk each input as numpy does") {
  // a [2, 1] + b [3]: out[i, j] reads a[i, 0] and b[j].
  const std::vector<int64_t> out = {2, 3};
  std::vector<size_t> ia, ib;
  ForEachBroadcast(out, BroadcastStrides({2, 1}, out), BroadcastStrides({3}, out),
                   [&](size_t, size_t a, size_t b) {
                     ia.push_back(a);
                     ib.push_back(b);
                   });
  CHECK(ia == std::vector<size_t>{0, 0, 0, 1, 1, 1});
  CHECK(ib == std::vector<size_t>{0, 1, 2, 0, 1, 2});
}

TEST_CASE("the registry knows the ops the shared models use") {
  const auto& r = palettize::eval::OpRegistry::Builtin();
  for (const char* op :
       {"linear", "relu", "softmax", "cast", "conv", "reshape", "transpose", "classify", "add"})
    CHECK(r.Find(op) != nullptr);
  CHECK(r.Find("sliding_windows") == nullptr);  // not supported: the error path of test_eval.py
}
