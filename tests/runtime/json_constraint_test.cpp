// JsonValidator: accepts exactly the prefixes of valid JSON documents of the required top type.
#include <gtest/gtest.h>

#include <string>

#include "runtime/json_constraint.h"

namespace ug {
namespace {

bool valid_document(const std::string& text, JsonTop top = JsonTop::kAny) {
  JsonValidator v(top);
  return v.feed(text) && v.complete();
}

TEST(JsonValidator, AcceptsCompleteDocuments) {
  EXPECT_TRUE(
      valid_document(R"({"a": [1, -2.5e+3, 0.1, true, false, null, "x\"\u00e9"], "b": {}})"));
  EXPECT_TRUE(valid_document("[]", JsonTop::kArray));
  EXPECT_TRUE(valid_document(" { } ", JsonTop::kObject) == false);  // trailing space after done
  EXPECT_TRUE(valid_document("{\n  \"k\" : [ ]\n}", JsonTop::kObject));
  EXPECT_FALSE(valid_document(" {}", JsonTop::kObject));  // the value comes first
  EXPECT_TRUE(valid_document("\"s\""));
  EXPECT_TRUE(valid_document("[0]"));
}

TEST(JsonValidator, RejectsInvalidBytesAndKeepsState) {
  JsonValidator v(JsonTop::kObject);
  EXPECT_FALSE(v.feed("["));  // top must be an object
  EXPECT_TRUE(v.feed("{\"a\""));
  EXPECT_FALSE(v.feed(","));   // colon expected
  EXPECT_TRUE(v.feed(":"));    // state unchanged by the failed feed
  EXPECT_FALSE(v.feed("01"));  // leading zero
  EXPECT_TRUE(v.feed("10"));
  EXPECT_FALSE(v.feed("]"));
  EXPECT_FALSE(v.complete());
  EXPECT_TRUE(v.accepts("}"));
  EXPECT_FALSE(v.complete());  // accepts() does not change the state
  EXPECT_TRUE(v.feed("}"));
  EXPECT_TRUE(v.complete());
  EXPECT_FALSE(v.feed(" x"));
  for (const char* bad : {"{\"a\":tru}", "{\"a\":\"\x01\"}", "{\"a\":1.}", "{\"a\":-}", "{,}",
                          "{\"a\":1,}", "{\"a\":\"\\q\"}", "{\"a\":\"\\u12G4\"}", "{\"a\" 1}"}) {
    EXPECT_FALSE(valid_document(bad)) << bad;
  }
}

TEST(JsonValidator, BoundsDepthAndWhitespace) {
  EXPECT_FALSE(valid_document(std::string(100, '[') + std::string(100, ']')));
  JsonValidator v(JsonTop::kObject);
  EXPECT_FALSE(v.feed("{" + std::string(1000, ' ')));
}

}  // namespace
}  // namespace ug

namespace ug {
namespace {

TEST(JsonValidator, ShortestCompletionCompletes) {
  for (const char* prefix :
       {"{", "{\"k", "{\"k\"", "{\"k\":", "{\"k\":[1,{\"a\":tr", "{\"k\":-", "{\"k\":1.",
        "{\"k\":1e", "{\"k\":\"x\\", "{\"k\":\"\\u12", "{\"a\":1,", "{\"a\":[1,"}) {
    JsonValidator v(JsonTop::kObject);
    ASSERT_TRUE(v.feed(prefix)) << prefix;
    const std::string rest = v.shortest_completion();
    EXPECT_TRUE(v.feed(rest)) << prefix << " + " << rest;
    EXPECT_TRUE(v.complete()) << prefix << " + " << rest;
  }
  JsonValidator empty(JsonTop::kArray);
  EXPECT_EQ(empty.shortest_completion(), "[]");
}

}  // namespace
}  // namespace ug
