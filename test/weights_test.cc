// Finding const weights and their consumers in real models, and reading their values.
#include <catch2/catch.hpp>

#include "mil/tensor_data.h"
#include "mil/weights.h"
#include "package/package.h"
#include "package/tensor_reader.h"
#include "test_util.h"

using namespace palettize;

TEST_CASE("weights of the mnist model, with consumers and values") {
  Package p;
  REQUIRE(p.Load(SharedModel("mnist")).ok());
  std::vector<ConstWeight> weights;
  REQUIRE(FindWeights(p.model(), &weights).ok());
  REQUIRE(weights.size() == 5);
  const ConstWeight& w = weights[1];
  CHECK(w.name == "model_Dense1_weight_to_fp16");
  CHECK(w.function == "main");
  CHECK(DescribeShape(w.shape) == "float16 [800, 784]");
  REQUIRE(w.consumers.size() == 1);
  CHECK(w.consumers[0].op_type == "linear");
  CHECK(w.consumers[0].op_name == "linear_0_cast_fp16");
  CHECK(w.consumers[0].input == "weight");
  TensorData data;
  REQUIRE(ReadTensorData(p, w, &data).ok());
  CHECK(data.size == 800 * 784 * 2);
  // The int32 shape constant is an immediate value.
  CHECK(weights[0].value->has_immediatevalue());
  REQUIRE(ReadTensorData(p, weights[0], &data).ok());
  CHECK(data.size == 8);
  CHECK(ElementAsDouble(data.data, weights[0].shape.mil_type, 0) == 1);
  CHECK(ElementAsDouble(data.data, weights[0].shape.mil_type, 1) == -1);
}

TEST_CASE("tensor types are validated") {
  mil::ValueType t;
  auto* tt = t.mutable_tensortype();
  tt->set_datatype(mil::FLOAT16);
  tt->set_rank(2);
  tt->add_dimensions()->mutable_constant()->set_size(4);
  TensorShape s;
  CHECK(ParseTensorType(t, &s).message() == "type: rank 2 but 1 dimensions");
  tt->add_dimensions()->mutable_unknown();
  CHECK(ParseTensorType(t, &s).message() == "type: dimension 1 is not constant");
  tt->mutable_dimensions(1)->mutable_constant()->set_size(uint64_t(1) << 62);
  CHECK(ParseTensorType(t, &s).message() == "type: float16 [4, 4611686018427387904] has too many elements");
  tt->mutable_dimensions(1)->mutable_constant()->set_size(3);
  REQUIRE(ParseTensorType(t, &s).ok());
  CHECK(s.elements == 12);
  tt->set_datatype(mil::DataType(77));
  CHECK(ParseTensorType(t, &s).message() == "type: unknown dataType 77");
}
