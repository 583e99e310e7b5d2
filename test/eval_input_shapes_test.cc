// eval/input_shapes.h: a function's inputs completed by the model description's flexible shapes,
// read from the description bytes that the package's Model message keeps as unknown fields.
#include <catch2/catch.hpp>

#include "Description.pb.h"
#include "MIL.pb.h"
#include "Model.pb.h"
#include "eval/input_shapes.h"
#include "eval/op_context.h"
#include "test_util.h"

using namespace palettize;
using namespace palettize::eval;

namespace {

namespace MT = CoreML::Specification::MILSpec;

mil::ValueType Declared(std::vector<int64_t> dims) {
  mil::ValueType t;
  SetTensorType(&t, MT::FLOAT32, dims);
  return t;
}

desc::FeatureDescription* AddInput(google::protobuf::RepeatedPtrField<desc::FeatureDescription>* inputs,
                                   const std::string& name, std::vector<int64_t> shape) {
  desc::FeatureDescription* f = inputs->Add();
  f->set_name(name);
  for (int64_t d : shape) f->mutable_type()->mutable_multiarraytype()->add_shape(d);
  return f;
}

// A package whose model.mlmodel carried `description`: the Model message holds it as unknown field 2.
void Describe(Package* package, const desc::ModelDescription& description) {
  desc::DescribedModel m;
  *m.mutable_description() = description;
  REQUIRE(package->model().MergeFromString(m.SerializeAsString()));
}

}  // namespace

TEST_CASE("eval input shapes: a range fills the unknown dimension and bounds a given shape") {
  Package package;
  desc::ModelDescription description;
  auto* ranges = AddInput(description.mutable_input(), "z", {1, 4})
                     ->mutable_type()
                     ->mutable_multiarraytype()
                     ->mutable_shaperange();
  ranges->add_sizeranges()->set_lowerbound(1);
  ranges->mutable_sizeranges(0)->set_upperbound(1);
  ranges->add_sizeranges()->set_lowerbound(2);
  ranges->mutable_sizeranges(1)->set_upperbound(-1);       // unbounded
  AddInput(description.mutable_input(), "fixed", {3, 3});  // contradicts the declared [2, -1]
  Describe(&package, description);
  const mil::ValueType z = Declared({1, -1}), fixed = Declared({2, -1});
  std::map<std::string, DescribedShape> shapes;
  REQUIRE(DescribedShapes(package, "main", {{"z", &z}, {"fixed", &fixed}}, &shapes).ok());
  REQUIRE(shapes.size() == 1);
  CHECK(ParseDeclaredType(WithDefaultShape(z, shapes["z"])).dims == std::vector<int64_t>{1, 4});
  std::string allowed;
  CHECK(ShapeAllowed(shapes["z"], {1, 1000}, &allowed));
  CHECK_FALSE(ShapeAllowed(shapes["z"], {1, 1}, &allowed));
  CHECK(allowed == "[1, 2..]");
  CHECK_FALSE(ShapeAllowed(shapes["z"], {1}, &allowed));
  // Another function of a model that lists none is not described.
  REQUIRE(DescribedShapes(package, "other", {{"z", &z}}, &shapes).ok());
  CHECK(shapes.empty());
}

TEST_CASE("eval input shapes: a multifunction description is read per function, enumerated shapes listed") {
  Package package;
  desc::ModelDescription description;
  desc::FunctionDescription* f = description.add_functions();
  f->set_name("flex");
  auto* e = AddInput(f->mutable_input(), "z", {1, 5})
                ->mutable_type()
                ->mutable_multiarraytype()
                ->mutable_enumeratedshapes();
  for (int64_t n : {5, 3}) {
    auto* s = e->add_shapes();
    s->add_shape(1);
    s->add_shape(n);
  }
  e->add_shapes()->add_shape(7);  // the wrong rank: left out
  description.add_functions()->set_name("main");
  Describe(&package, description);
  const mil::ValueType z = Declared({1, -1});
  std::map<std::string, DescribedShape> shapes;
  REQUIRE(DescribedShapes(package, "flex", {{"z", &z}}, &shapes).ok());
  REQUIRE(shapes.count("z") == 1);
  std::string allowed;
  CHECK(ShapeAllowed(shapes["z"], {1, 3}, &allowed));
  CHECK_FALSE(ShapeAllowed(shapes["z"], {1, 4}, &allowed));
  CHECK(allowed == "[1, 5] or [1, 3]");
  REQUIRE(DescribedShapes(package, "main", {{"z", &z}}, &shapes).ok());
  CHECK(shapes.empty());
}

TEST_CASE("eval input shapes: a description that does not parse is named") {
  Package package;
  // Field 2, length-delimited, 3 bytes that are not a ModelDescription (a truncated varint).
  REQUIRE(package.model().MergeFromString(std::string("\x12\x03\x08\xff\xff", 5)));
  const mil::ValueType z = Declared({1, -1});
  std::map<std::string, DescribedShape> shapes;
  const Status st = DescribedShapes(package, "main", {{"z", &z}}, &shapes);
  CHECK(st.message() == ": description: does not parse");
}
