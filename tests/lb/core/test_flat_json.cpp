#include <doctest.h>

#include <string>

#include "lb/core/flat_json.h"

using lb::FlatJson;
using lb::json_escape;
using lb::JsonValue;

TEST_CASE("flat_json: scalars, nested values skipped, junk refused") {
  auto j = FlatJson::parse(
      R"( {"latency_ms": 200, "health":"be\"hind", "dead":true, "x":null,
           "nested":{"a":[1,"}"]}, "capacity":5,} )");
  REQUIRE(j.has_value());
  CHECK(j->find("latency_ms")->as_count() == 200);
  CHECK(j->find("health")->text == "be\"hind");
  CHECK(j->find("dead")->boolean);
  CHECK(j->find("x")->type == JsonValue::Type::null);
  CHECK(j->find("nested")->text == R"({"a":[1,"}"]})");
  CHECK(j->find("nested")->is_object());
  CHECK(j->find("capacity")->as_count() == 5);
  CHECK(j->find("missing") == nullptr);
  CHECK(!FlatJson::parse("").has_value());
  CHECK(!FlatJson::parse("[1]").has_value());
  CHECK(!FlatJson::parse("{\"a\":}").has_value());
  CHECK(!FlatJson::parse("{\"a\":1} trailing").has_value());
  CHECK(!FlatJson::parse(R"({"a":-1})")->find("a")->as_count().has_value());
  CHECK(json_escape("a\"b\\c\n") == "a\\\"b\\\\c\\n");
}

TEST_CASE("flat_json: the last duplicate wins; escapes decode to UTF-8") {
  auto j = FlatJson::parse(R"({"a":1,"a":2,"s":"\u00e9\u20ac\n\/","t":"\u0041"})");
  REQUIRE(j.has_value());
  CHECK(j->find("a")->as_count() == 2);
  CHECK(j->find("s")->text == "\xC3\xA9\xE2\x82\xAC\n/");
  CHECK(j->find("t")->text == "A");
  CHECK(j->fields().size() == 4);
  // A \u escape must have four hex digits.
  CHECK(!FlatJson::parse(R"({"s":"\u00zz"})").has_value());
  CHECK(!FlatJson::parse(R"({"s":"\u00"})").has_value());
}

TEST_CASE("flat_json: numbers and counts") {
  auto j = FlatJson::parse(
      R"({"i":42,"f":0.99990,"e":1.5e3,"neg":-3,"frac":2.5,"big":1e300,"huge":1e999,)"
      R"("slot":104857600,"max":9000000000000000,"over":9000000000000001})");
  REQUIRE(j.has_value());
  CHECK(j->find("i")->as_count() == 42);
  CHECK(j->find("f")->number == doctest::Approx(0.9999));
  CHECK(!j->find("f")->as_count().has_value());
  CHECK(j->find("e")->as_count() == 1500);
  CHECK(j->find("neg")->number == -3);
  CHECK(!j->find("frac")->as_count().has_value());
  CHECK(!j->find("big")->as_count().has_value());
  CHECK(j->find("huge")->type == JsonValue::Type::number);  // inf, but never a count
  CHECK(!j->find("huge")->as_count().has_value());
  CHECK(j->find("slot")->as_count() == 104'857'600u);
  CHECK(j->find("max")->as_count() == 9'000'000'000'000'000u);
  CHECK(!j->find("over")->as_count().has_value());
  CHECK(!FlatJson::parse(R"({"n":-})").has_value());
  CHECK(!FlatJson::parse(R"({"n":1.2.3})").has_value());
  CHECK(!FlatJson::parse(R"({"n":12abc})").has_value());
  // A string is not a count even when it spells one.
  CHECK(!FlatJson::parse(R"({"n":"12"})")->find("n")->as_count().has_value());
}

TEST_CASE("flat_json: lookup walks nested objects") {
  auto j = FlatJson::parse(R"({
    "lastKnownTip": {"slot": 71603161, "id": "ab\"}c", "height": 7756720},
    "metrics": {"runtimeStats": {"cpuTime": 81064672549}, "list": [1, {"x": 2}]},
    "origin": "origin", "arr": [{"slot": 1}], "deep": {"a": {"b": {"c": true}}}
  })");
  REQUIRE(j.has_value());
  CHECK(j->lookup("lastKnownTip.slot")->as_count() == 71'603'161u);
  CHECK(j->lookup("lastKnownTip.id")->text == "ab\"}c");
  CHECK(j->lookup("metrics.runtimeStats.cpuTime")->as_count() == 81'064'672'549u);
  CHECK(j->lookup("deep.a.b.c")->boolean);
  CHECK(j->lookup("origin")->text == "origin");  // no dot: same as find()
  CHECK(j->lookup("lastKnownTip")->is_object());
  CHECK(!j->lookup("metrics.list")->is_object());  // an array is nested but no object
  // Missing steps, steps through scalars or arrays, and empty segments are nullopt.
  CHECK(!j->lookup("lastKnownTip.missing").has_value());
  CHECK(!j->lookup("origin.slot").has_value());
  CHECK(!j->lookup("arr.slot").has_value());
  CHECK(!j->lookup("metrics.list.x").has_value());
  CHECK(!j->lookup("nothing.slot").has_value());
  CHECK(!j->lookup("").has_value());
  CHECK(!j->lookup("lastKnownTip.").has_value());
  CHECK(!j->lookup(".slot").has_value());
  // A nested object that is itself malformed fails at lookup, not at parse: raw text is
  // only scanned for balance.
  auto bad = FlatJson::parse(R"({"t": {"slot" 5}})");
  REQUIRE(bad.has_value());
  CHECK(bad->find("t")->text == R"({"slot" 5})");
  CHECK(!bad->lookup("t.slot").has_value());
}

TEST_CASE("flat_json: garbage never crashes and is refused") {
  const char* junk[] = {
      "{",
      "}",
      "{\"a\"",
      "{\"a\":",
      "{\"a\":1",
      "{\"a\":\"unterminated}",
      "{\"a\":\"esc\\",
      "{\"a\":{\"b\":[1,2}",
      "{\"a\":tru}",
      "{\"a\":nul}",
      "{a:1}",
      "{\"a\" 1}",
      "{\"a\":1,,}",
      "{\"a\":1 \"b\":2}",
      "null",
      "\"string\"",
      "42",
      "<html><body>502 Bad Gateway</body></html>",
  };
  for (const char* s : junk) {
    INFO(s);
    CHECK(!FlatJson::parse(s).has_value());
  }
  // Binary bytes, including NUL, in a string are kept, not a reason to crash.
  std::string bin = std::string("{\"a\":\"") + std::string("\0\xff\x01", 3) + "\"}";
  auto b = FlatJson::parse(bin);
  REQUIRE(b.has_value());
  CHECK(b->find("a")->text.size() == 3);
}

TEST_CASE("flat_json: size and depth are bounded") {
  // Depth: kMaxDepth levels are fine, one more is refused (no recursion either way).
  auto nest = [](int levels) {
    std::string s = "{\"a\":";
    for (int i = 0; i < levels; ++i) s += "[";
    for (int i = 0; i < levels; ++i) s += "]";
    return s + "}";
  };
  CHECK(FlatJson::parse(nest(FlatJson::kMaxDepth)).has_value());
  CHECK(!FlatJson::parse(nest(FlatJson::kMaxDepth + 1)).has_value());
  CHECK(!FlatJson::parse(std::string(100'000, '[')).has_value());
  std::string open = "{\"a\":" + std::string(100'000, '{');
  CHECK(!FlatJson::parse(open).has_value());

  // Size: a body just under the cap parses, one byte over is refused.
  std::string pad = "{\"p\":\"";
  std::string tail = "\"}";
  std::string fits = pad + std::string(FlatJson::kMaxBytes - pad.size() - tail.size(), 'x') + tail;
  REQUIRE(fits.size() == FlatJson::kMaxBytes);
  CHECK(FlatJson::parse(fits).has_value());
  CHECK(!FlatJson::parse(fits + " ").has_value());
}

TEST_CASE("flat_json: json_unescape decodes a string literal's body") {
  CHECK(lb::json_unescape("plain") == "plain");
  CHECK(lb::json_unescape(R"(a\"b\\c\/d\b\f\n\r\t)") == "a\"b\\c/d\b\f\n\r\t");
  CHECK(lb::json_unescape(R"(\u0041\u00e9\u20AC)") == "A\xC3\xA9\xE2\x82\xAC");
  CHECK(lb::json_unescape(R"(\q)") == "q");  // tolerant: an unknown escape is its character
  CHECK(lb::json_unescape("") == "");
  CHECK(!lb::json_unescape(R"(\)").has_value());
  CHECK(!lb::json_unescape(R"(\u004)").has_value());
  CHECK(!lb::json_unescape(R"(\u00g1)").has_value());
  // It round-trips json_escape.
  const std::string s = "q\"b\\s\n\t\x01 \xC3\xA9";
  CHECK(lb::json_unescape(lb::json_escape(s)) == s);
}
