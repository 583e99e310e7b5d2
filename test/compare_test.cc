// Compare: per-weight error between an original and a compressed package.
#include <catch2/catch.hpp>

#include <cmath>

#include "mil/weights.h"
#include "package/package.h"
#include "palettize/compare.h"
#include "palettize/compress.h"
#include "palettize/decompress.h"
#include "test_util.h"

using namespace palettize;

namespace {

// Compresses `model` with kmeans at `nbits` into `out`; returns the compress report.
CompressReport CompressInto(const std::string& model, int nbits, const std::string& out) {
  CompressOptions options;
  options.config.global_config = PalettizeConfig();
  options.config.global_config->nbits = nbits;
  CompressReport report;
  const Status st = Compress(model, out, options, &report);
  INFO(st.message());
  REQUIRE(st.ok());
  return report;
}

}  // namespace

TEST_CASE("a package compared with itself: every weight unchanged, infinite SNR, no error", "[compare]") {
  CompareReport r;
  REQUIRE(Compare(SharedModel("mnist"), SharedModel("mnist"), &r).ok());
  REQUIRE(r.weights.size() == 5);
  for (const WeightComparison& c : r.weights) {
    CHECK(c.state == WeightState::kUnchanged);
    CHECK(c.sse == 0);
    CHECK(c.max_abs_error == 0);
    CHECK(std::isinf(c.snr_db));
    CHECK(c.snr_db > 0);
  }
  CHECK(r.unchanged == 5);
  CHECK(std::isinf(r.snr_db));
  CHECK(std::isinf(r.min_snr_db));
  CHECK(CheckComparable(r).ok());
  CHECK(CompareToTable(r).find("5 weights: 0 palettized, 5 unchanged; SNR inf dB overall, inf dB worst; "
                               "max abs error 0\n") != std::string::npos);
}

TEST_CASE("compare measures what compress reports, on the decompressed weights", "[compare]") {
  TempDir tmp;
  const std::string out = tmp.path() + "/m4.mlpackage";
  const CompressReport rep = CompressInto(SharedModel("mnist"), 4, out);
  CompareReport r;
  REQUIRE(Compare(SharedModel("mnist"), out, &r).ok());
  REQUIRE(r.weights.size() == rep.weights.size());
  size_t palettized = 0;
  for (size_t i = 0; i < r.weights.size(); ++i) {
    const WeightComparison& c = r.weights[i];
    const WeightReport& w = rep.weights[i];
    INFO(c.name);
    CHECK(c.name == w.name);
    if (!w.palettized) {
      CHECK(c.state == WeightState::kUnchanged);
      CHECK(c.sse == 0);
      continue;
    }
    ++palettized;
    CHECK(c.state == WeightState::kPalettized);
    CHECK(c.nbits == 4);
    CHECK(c.max_abs_error == w.max_abs_error);
    CHECK(c.sse == Approx(w.sse).epsilon(1e-9));
    CHECK(c.snr_db == Approx(w.snr_db).epsilon(1e-9));
    CHECK(c.snr_db < r.snr_db + 30);
  }
  CHECK(palettized == rep.palettized);
  CHECK(r.palettized == rep.palettized);
  CHECK(r.min_snr_db <= r.snr_db);
  CHECK(CheckComparable(r).ok());

  // Decompressed, the same package compares the same, every weight now a plain const.
  const std::string dense = tmp.path() + "/dense.mlpackage";
  DecompressReport dr;
  REQUIRE(Decompress(out, dense, DecompressOptions(), &dr).ok());
  CompareReport d;
  REQUIRE(Compare(SharedModel("mnist"), dense, &d).ok());
  CHECK(d.unchanged == d.weights.size());
  CHECK(d.sse == r.sse);
  CHECK(d.max_abs_error == r.max_abs_error);
}

TEST_CASE("different models: every weight missing, and CheckComparable names the first", "[compare]") {
  CompareReport r;
  REQUIRE(Compare(SharedModel("mnist"), SharedModel("activity_fp16"), &r).ok());
  CHECK(r.missing + r.mismatched == r.weights.size());
  CHECK(r.missing > 0);
  const Status st = CheckComparable(r);
  CHECK(st.code() == Status::Code::kInvalidInput);
  CHECK(st.message().rfind(SharedModel("activity_fp16") + ": weight main/", 0) == 0);
  CHECK(st.message().find("(and " + std::to_string(r.weights.size() - 1) + " more missing or mismatched)") !=
        std::string::npos);
  const std::string json = CompareToJson(r);
  CHECK(json.find("\"state\": \"missing\"") != std::string::npos);
}

TEST_CASE("a weight whose shape differs is a mismatch, and CheckComparable says so", "[compare]") {
  TempDir tmp;
  Package p;
  REQUIRE(p.Load(SharedModel("mnist")).ok());
  std::vector<ConstWeight> weights;
  REQUIRE(FindWeights(p.model(), &weights).ok());
  const ConstWeight& w = weights[1];
  REQUIRE(w.name == "model_Dense1_weight_to_fp16");
  // [800, 784] -> [784, 800]: the same blob size, so only the type differs.
  for (mil::ValueType* t : {w.op->mutable_outputs(0)->mutable_type(), w.value->mutable_type()}) {
    if (!t->has_tensortype()) continue;
    t->mutable_tensortype()->mutable_dimensions(0)->mutable_constant()->set_size(784);
    t->mutable_tensortype()->mutable_dimensions(1)->mutable_constant()->set_size(800);
  }
  const std::string out = tmp.path() + "/t.mlpackage";
  REQUIRE(p.Save(p.model(), out, false).ok());
  CompareReport r;
  REQUIRE(Compare(SharedModel("mnist"), out, &r).ok());
  CHECK(r.mismatched == 1);
  CHECK(r.weights[1].state == WeightState::kMismatch);
  CHECK(r.weights[1].problem == "float16 [784, 800], not float16 [800, 784] as in the original");
  CHECK(CheckComparable(r).message() ==
        out +
            ": weight main/model_Dense1_weight_to_fp16: mismatch: float16 [784, 800], not float16 [800, 784] "
            "as in the original");
  CHECK(r.unchanged == 4);
}

TEST_CASE("an unreadable package is an error naming it", "[compare]") {
  TempDir tmp;
  CompareReport r;
  const Status st = Compare(SharedModel("mnist"), tmp.path() + "/nope.mlpackage", &r);
  CHECK(st.code() == Status::Code::kIOError);
  CHECK(st.message().find("nope.mlpackage") != std::string::npos);
}
