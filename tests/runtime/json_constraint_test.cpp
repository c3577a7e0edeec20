// JsonValidator: accepts exactly the prefixes of valid JSON documents of the required top type.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "runtime/json_constraint.h"
#include "util/error.h"

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

namespace ug {
namespace {

using nlohmann::json;

bool valid_for(const char* schema, const std::string& text, bool strict = false) {
  JsonValidator v(JsonSchema::compile(json::parse(schema), strict));
  return v.feed(text) && v.complete();
}

// Every prefix of a valid document is accepted, and the whole document completes.
void expect_valid(const char* schema, const std::string& text, bool strict = false) {
  JsonValidator v(JsonSchema::compile(json::parse(schema), strict));
  for (size_t i = 0; i < text.size(); ++i) {
    ASSERT_TRUE(v.feed(text.substr(i, 1)))
        << schema << " rejected '" << text.substr(0, i + 1) << "'";
  }
  EXPECT_TRUE(v.complete()) << schema << " " << text;
}

const char* kPerson = R"({"type":"object","properties":{
  "name":{"type":"string","minLength":1,"maxLength":5},
  "age":{"type":"integer"},
  "tags":{"type":"array","items":{"enum":["a","b"]},"minItems":1,"maxItems":2},
  "pet":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/pet"}]}},
  "required":["name","age"],"additionalProperties":false,
  "$defs":{"pet":{"type":"object","properties":{"kind":{"const":"cat"}},"required":["kind"]}}})";

TEST(JsonSchema, AcceptsValidDocuments) {
  expect_valid(kPerson, R"({"name":"Ann","age":31})");
  expect_valid(kPerson, R"({ "age": -2, "name": "\u00e9", "tags": ["a", "b"], "pet": null })");
  expect_valid(kPerson, R"({"name":"Bo","age":0,"pet":{"kind":"cat"}})");
  expect_valid(R"({"type":["string","null"]})", "null");
  expect_valid(R"({"type":"array","items":{"type":"number"}})", "[-1.5e3,0.25,7]");
  expect_valid(R"({"type":"array","items":{"type":"object","properties":{"x":{"type":"boolean"}},
    "required":["x"]}})",
               R"([{"x":true},{"x":false,"extra":[1,{}]}])");
  expect_valid(R"({"enum":[1,12,"x",{"a":1}]})", R"({"a":1})");
  expect_valid(
      R"({"definitions":{"n":{"type":"integer"}},"type":"array","items":{"$ref":"#/definitions/n"}})",
      "[1,2,3]");
}

TEST(JsonSchema, RejectsInvalidPrefixes) {
  // Each: a prefix that must be refused at its last byte.
  for (const char* bad :
       {R"({"x)", R"({"name":"")", R"({"name":"abcdef)", R"({"name":1)", R"({"name":"a","n)",
        R"({"age":1.)", R"({"age":1e)", R"({"name":"a"})", R"({"name":"a","age":1,"tags":[])",
        R"({"name":"a","age":1,"tags":["a","b",)", R"({"name":"a","age":1,"tags":["c)",
        R"({"name":"a","age":1,"pet":{})", R"({"name":"a","age":1,"pet":{"kind":"d)", R"([)"}) {
    const std::string text = bad;
    JsonValidator v(JsonSchema::compile(json::parse(kPerson)));
    const std::string head = text.substr(0, text.size() - 1);
    ASSERT_TRUE(v.feed(head)) << "prefix " << head;
    EXPECT_FALSE(v.feed(text.substr(text.size() - 1))) << text;
  }
  EXPECT_FALSE(valid_for(R"({"type":"integer"})", "[1]"));
  EXPECT_FALSE(valid_for(R"({"type":"boolean"})", "null"));
  EXPECT_FALSE(valid_for(R"({"enum":["a","b"]})", "\"c\""));
  EXPECT_TRUE(valid_for(R"({"enum":["a","b"]})", "\"b\""));
}

TEST(JsonSchema, StringsAreValidUtf8) {
  const char* any = R"({"type":"string"})";
  EXPECT_TRUE(valid_for(any, "\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\""));
  for (const char* bad :
       {"\"\x80", "\"\xC3\"", "\"\xC0\x80", "\"\xED\xA0\x80", "\"\xF5", "\"\xE2\x82\""}) {
    JsonValidator v(JsonSchema::compile(json::parse(any)));
    EXPECT_FALSE(v.feed(bad)) << bad;
  }
  JsonValidator v(JsonSchema::compile(json::parse(any)));
  ASSERT_TRUE(v.feed("\"\xF0\x9F"));
  const std::string rest = v.shortest_completion();
  EXPECT_TRUE(v.feed(rest));
  EXPECT_TRUE(v.complete());
}

TEST(JsonSchema, StrictRequiresEveryListedProperty) {
  const char* s = R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"null"}}})";
  EXPECT_TRUE(valid_for(s, R"({"a":1})"));         // not strict: none required
  EXPECT_TRUE(valid_for(s, R"({"a":1,"zz":2})"));  // and extra keys allowed
  EXPECT_FALSE(valid_for(s, R"({"a":1})", true));
  EXPECT_FALSE(valid_for(s, R"({"a":1,"b":null,"zz":2})", true));
  EXPECT_TRUE(valid_for(s, R"({"b":null,"a":1})", true));
}

TEST(JsonSchema, TopLevelNumberCanEnd) {
  JsonValidator v(JsonSchema::compile(json::parse(R"({"type":"integer"})")));
  ASSERT_TRUE(v.feed("12"));
  EXPECT_FALSE(v.complete());  // more digits could follow
  EXPECT_TRUE(v.can_end());
  EXPECT_FALSE(v.accepts("."));
}

TEST(JsonSchema, RefusesKeywordsItCannotEnforce) {
  for (const char* s :
       {R"({"type":"string","pattern":"a+"})", R"({"type":"integer","minimum":3})",
        R"({"oneOf":[{"type":"string"}]})", R"({"$ref":"#"})",
        R"({"$defs":{"a":{"type":"array","items":{"$ref":"#/$defs/a"}}},"$ref":"#/$defs/a"})",
        R"({"$ref":"#/$defs/missing"})", R"({"type":"strin"})",
        R"({"type":"array","items":[{"type":"string"}]})",
        R"({"type":"object","additionalProperties":false,"required":["x"]})"}) {
    EXPECT_THROW(JsonSchema::compile(json::parse(s)), Error) << s;
  }
  try {
    JsonSchema::compile(json::parse(R"({"type":"object","properties":{"n":{"maximum":3}}})"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'maximum' is not supported at /properties/n"),
              std::string::npos)
        << e.what();
  }
  std::string deep = R"({"type":"string"})";
  for (int i = 0; i < 200; ++i) deep = R"({"type":"array","items":)" + deep + "}";
  EXPECT_THROW(JsonSchema::compile(json::parse(deep)), Error);  // bounded recursion
  // Annotations are ignored.
  EXPECT_TRUE(valid_for(R"({"title":"t","description":"d","type":"string","format":"date",
    "examples":["x"],"default":"y"})",
                        "\"z\""));
}

TEST(JsonSchema, ShortestCompletionSatisfiesTheSchema) {
  for (const char* prefix : {"{", R"({"na)", R"({"name")", R"({"name":"a")", R"({"age":4,)",
                             R"({"name":"a","age":1,"tags":[)", R"({"name":"a","pet":{)",
                             R"({"name":"a","pet":{"kind":"c)", R"({"age":-)"}) {
    JsonValidator v(JsonSchema::compile(json::parse(kPerson)));
    ASSERT_TRUE(v.feed(prefix)) << prefix;
    const std::string rest = v.shortest_completion();
    EXPECT_TRUE(v.feed(rest)) << prefix << " + " << rest;
    EXPECT_TRUE(v.complete()) << prefix << " + " << rest;
  }
}

}  // namespace
}  // namespace ug

namespace ug {
namespace {

nlohmann::json random_value(std::mt19937& rng, int depth) {
  const int kind = int(rng() % (depth > 3 ? 5u : 7u));
  switch (kind) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return int64_t(rng() % 2000) - 1000;
    case 3:
      return double(int64_t(rng() % 100000) - 50000) / 64.0;
    case 4: {
      std::string s;
      const char* alphabet[] = {"a", "Z", " ", "\"", "\\", "\n", "\xC3\xA9", "\xE2\x82\xAC", "/"};
      for (int i = int(rng() % 6); i > 0; --i) s += alphabet[rng() % 9];
      return s;
    }
    case 5: {
      nlohmann::json a = nlohmann::json::array();
      for (int i = int(rng() % 4); i > 0; --i) a.push_back(random_value(rng, depth + 1));
      return a;
    }
    default: {
      nlohmann::json o = nlohmann::json::object();
      for (int i = int(rng() % 4); i > 0; --i) {
        o["k" + std::to_string(rng() % 10)] = random_value(rng, depth + 1);
      }
      return o;
    }
  }
}

// Property check against nlohmann's parser: every serialized document is accepted whole, and a
// mutated text the validator calls complete always parses.
TEST(JsonSchema, AgreesWithAParserOnRandomDocuments) {
  std::mt19937 rng(7);
  const auto any = JsonSchema::compile(nlohmann::json::object());
  int mutated_complete = 0;
  for (int i = 0; i < 3000; ++i) {
    nlohmann::json v = nlohmann::json::object();
    v["v"] = random_value(rng, 0);
    const std::string text = v.dump(i % 2 ? 1 : -1);
    JsonValidator ok(any);
    ASSERT_TRUE(ok.feed(text)) << text;
    ASSERT_TRUE(ok.complete()) << text;
    std::string bad = text;
    bad[rng() % bad.size()] = "{}[]\",:0a -\\e."[rng() % 14];
    JsonValidator m(any);
    if (m.feed(bad) && m.complete()) {
      ++mutated_complete;
      EXPECT_TRUE(nlohmann::json::accept(bad)) << bad;
    }
  }
  EXPECT_GT(mutated_complete, 0);  // some mutations stay valid (e.g. a digit for a digit)
}

}  // namespace
}  // namespace ug
