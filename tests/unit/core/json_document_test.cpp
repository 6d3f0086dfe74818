#include "core/json_document.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <random>

#include "tests/fuzz/core/to_nlohmann.hpp"

using acme_sidecar::core::append_json_string;
using acme_sidecar::core::JsonDocument;
using acme_sidecar::core::JsonValue;
using acme_sidecar::testing::to_nlohmann;

namespace {

// Accepts exactly what nlohmann accepts, and reads the same values.
void check_agrees(const std::string& text) {
  INFO("text: " << nlohmann::json(text).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace));
  auto ours = JsonDocument::parse(text);
  auto theirs = nlohmann::json::parse(text, nullptr, false);
  REQUIRE(ours.ok() == !theirs.is_discarded());
  if (ours.ok()) CHECK(to_nlohmann(ours.root()) == theirs);
}

}  // namespace

TEST_CASE("JsonDocument accepts RFC 8259 JSON and reads what nlohmann reads") {
  const char* valid[] = {
      "{}", "[]", "0", "-0", "1.5e3", "-12.25E-2", "true", "false", "null", "\"\"",
      R"({"a":1,"b":[true,false,null],"c":{"d":"e"}})",
      " \t\r\n{ \"k\" : [ 1 , 2 ] } \n",
      R"("\" \\ \/ \b \f \n \r \t \u0041 \u00e9 \u20AC \ud83d\ude00 \u0000")",
      "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"",
      "\xEF\xBB\xBF{\"bom\":true}",
      R"({"dup":1,"dup":2})",
      "[[[[[[[[[[[]]]]]]]]]]]",
      "123456789012345678901234567890", "1e-400", "-0.0e0", "1.7976931348623157e308",
      R"({"metadata":{"name":"x","labels":{"a/b":"c"}},"data":{"tls.crt":"QUJD"}})",
  };
  for (const char* t : valid) {
    check_agrees(t);
    CHECK(JsonDocument::parse(t).ok());
  }
}

TEST_CASE("JsonDocument refuses what RFC 8259 refuses, with the place") {
  const char* invalid[] = {
      "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{a:1}", "{'a':1}", "[1 2]", "{\"a\" 1}", "01", "1.", ".5", "1e",
      "+1", "-", "--1", "tru", "nul", "True", "NaN", "Infinity", "\"abc", "\"a\nb\"", "\"\\x\"", "\"\\u12\"",
      "\"\\u12G4\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\xC0\xAF\"", "\"\xED\xA0\x80\"",
      "\"\xF4\x90\x80\x80\"", "\"\xF8\"", "\"\xC3\"", "\"\x80\"", "{} {}", "[] x", "/* c */ {}", "{\"a\":1}//",
      "\"\x7F\x01\"", "1e400", "-1.5E+999", "[1e309]",
      "1000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
      "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
  };
  for (const char* t : invalid) {
    check_agrees(t);
    auto doc = JsonDocument::parse(t);
    CHECK_FALSE(doc.ok());
    CHECK(doc.error().find("offset") != std::string::npos);
    CHECK(doc.root().is_null());  // safe to read, reads nothing
  }
  // NUL inside the text is a control character, not the end.
  check_agrees(std::string("\"a\0b\"", 5));
}

TEST_CASE("JsonDocument refuses nesting beyond its limit") {
  std::string deep(600, '[');
  deep += std::string(600, ']');
  auto doc = JsonDocument::parse(deep);
  CHECK_FALSE(doc.ok());
  CHECK(doc.error().find("nesting too deep") != std::string::npos);
  CHECK(JsonDocument::parse(deep, 1000).ok());
}

TEST_CASE("JsonValue reads members, elements, strings and numbers") {
  const std::string text =
      R"({"kind":"Secret","metadata":{"name":"web","resourceVersion":"42","gone":null},)"
      R"("n":-7,"f":2.5,"big":99999999999999999999,"list":["a","b\"c",3],"t":true,"esc\u0061ped":"v\u00e9"})";
  auto doc = JsonDocument::parse(text);
  REQUIRE(doc.ok());
  auto root = doc.root();
  CHECK(root.is_object());
  CHECK(root.size() == 8);
  CHECK(root.find("kind")->equals("Secret"));
  CHECK_FALSE(root.find("kind")->equals("Secre"));
  CHECK(root.find("metadata")->find("resourceVersion")->str() == "42");
  CHECK(root.find("metadata")->find("gone")->is_null());
  CHECK_FALSE(root.find("metadata")->get("gone"));
  CHECK_FALSE(root.find("absent"));
  CHECK_FALSE(root.find("kind")->find("x"));  // not an object
  CHECK(root.find("n")->integer() == -7);
  CHECK_FALSE(root.find("f")->integer());
  CHECK_FALSE(root.find("big")->integer());
  CHECK(root.find("f")->raw() == "2.5");
  CHECK(root.find("t")->boolean());
  CHECK(root.find("escaped")->str() == "v\xC3\xA9");  // key and value unescaped
  CHECK_FALSE(root.find("escaped")->plain());
  CHECK(root.find("escaped")->raw() == "v\\u00e9");

  std::vector<std::string> keys;
  for (auto m : root) keys.push_back(m.key());
  CHECK(keys == std::vector<std::string>{"kind", "metadata", "n", "f", "big", "list", "t", "escaped"});
  CHECK(root.find("escaped")->key_equals("escaped"));
  CHECK(root.find("kind")->raw_key() == "kind");

  auto list = *root.find("list");
  CHECK(list.size() == 3);
  std::vector<std::string> items;
  for (auto e : list) items.push_back(e.is_string() ? e.str() : std::string(e.raw()));
  CHECK(items == std::vector<std::string>{"a", "b\"c", "3"});
  for (auto e : list) CHECK(e.key().empty());  // array elements have no key
  CHECK(std::string(list.type_name()) == "array");
  CHECK(root.find("kind")->begin() == root.find("kind")->end());
}

TEST_CASE("JsonValue: empty containers iterate nothing") {
  auto doc = JsonDocument::parse(R"({"o":{},"a":[],"z":1})");
  REQUIRE(doc.ok());
  auto o = *doc.root().find("o");
  auto a = *doc.root().find("a");
  CHECK(o.begin() == o.end());
  CHECK(a.begin() == a.end());
  CHECK(o.size() == 0);
  CHECK(doc.root().find("z")->integer() == 1);
}

TEST_CASE("append_json_string writes strings nlohmann reads back unchanged") {
  const std::string samples[] = {"", "plain", "quote\" backslash\\ slash/", "ctl\x01\x1f\n\r\t\b\f",
                                 std::string("nul\0byte", 8), "caf\xC3\xA9 \xF0\x9F\x98\x80"};
  for (const auto& s : samples) {
    std::string out = "x";
    append_json_string(out, s);
    CHECK(out.front() == 'x');
    const std::string literal = out.substr(1);  // the document reads the text in place: keep it
    auto back = nlohmann::json::parse(literal);
    CHECK(back.get<std::string>() == s);
    auto doc = JsonDocument::parse(literal);
    REQUIRE(doc.ok());
    CHECK(doc.root().str() == s);
  }
}

TEST_CASE("JsonDocument agrees with nlohmann on mutated documents") {
  // A deterministic mutation run (the libFuzzer target tests/fuzz/core explores further).
  const std::string seeds[] = {
      R"({"type":"ADDED","object":{"metadata":{"name":"a","labels":{"k":"v"}},"data":{"x":"\u00e9"}}})",
      R"([1,-2.5e-3,true,null,"s\\t",{"a":[{}]}])",
      "\"\xE2\x82\xAC\\ud83d\\ude00\"",
  };
  std::mt19937 rng(1);
  const char alphabet[] = "{}[]\",:\\u0123456789abcdefE+-.tfn \t\n\x80\xC3\xA9\xED\xF0";
  for (const auto& seed : seeds) {
    for (int round = 0; round < 2000; ++round) {
      std::string t = seed;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !t.empty(); ++e) {
        const std::size_t at = rng() % t.size();
        const char c = alphabet[rng() % (sizeof(alphabet) - 1)];
        switch (rng() % 3) {
          case 0: t[at] = c; break;
          case 1: t.insert(t.begin() + static_cast<std::ptrdiff_t>(at), c); break;
          default: t.erase(at, 1);
        }
      }
      check_agrees(t);
    }
  }
}

TEST_CASE("append_json_string replaces bytes that are not UTF-8, so its output always parses") {
  struct Case {
    std::string in, want;
  };
  const Case cases[] = {
      {"a\xFFz", "a\xEF\xBF\xBDz"},
      {"\xC3", "\xEF\xBF\xBD"},                                  // truncated sequence
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},  // an encoded surrogate: each byte
      {"\xC3\xA9\x80", "\xC3\xA9\xEF\xBF\xBD"},                  // valid, then a stray continuation
  };
  for (const auto& c : cases) {
    std::string out;
    append_json_string(out, c.in);
    auto doc = JsonDocument::parse(out);
    REQUIRE(doc.ok());
    CHECK(doc.root().str() == c.want);
  }
}
