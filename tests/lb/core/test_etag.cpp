#include <doctest.h>

#include <cstdint>
#include <string>

#include "lb/core/etag.h"

using namespace lb;

namespace {
// xxHash's sanity buffer (cli/xsum_sanity_check.c XSUM_fillTestBuffer), so the published
// XXH3-128 vectors below apply to it.
std::string sanity_buffer(size_t len) {
  std::string b(len, '\0');
  uint64_t gen = 2654435761U;
  for (size_t i = 0; i < len; ++i) {
    b[i] = static_cast<char>(gen >> 56);
    gen *= 11400714785074694797ULL;
  }
  return b;
}
}  // namespace

TEST_CASE("body_etag matches xxHash's published XXH3-128 vectors") {
  // Vectors from xxHash's XSUM_XXH128_testdata (seed 0), printed high half first.
  CHECK(body_etag("") == "\"c1-99aa06d3014798d86001c324468d497f\"");
  CHECK(body_etag(sanity_buffer(1)) == "\"c1-a6cd5e9392000f6ac44bdff4074eecdb\"");
  CHECK(body_etag(sanity_buffer(6)) == "\"c1-082afe0b8162d12a3e7039bdda43cfc6\"");
  CHECK(body_etag(sanity_buffer(81)) == "\"c1-4952f58181ab00425e8bafb9f95fb803\"");
  CHECK(body_etag(sanity_buffer(2367)) == "\"c1-e89c0f6ff369b427cb37aeb9e5d361ed\"");
  CHECK(body_etag("x").size() == kBodyEtagLen);
  CHECK(body_etag("null") != body_etag("null "));
}

TEST_CASE("etag if_none_match: exact, weak on either side, and *") {
  std::string e = body_etag("{\"a\":1}");
  CHECK(if_none_match(e, e));
  CHECK(if_none_match("  " + e + "\t", e));
  CHECK(if_none_match("W/" + e, e));
  CHECK(if_none_match(e, "W/" + e));
  CHECK(if_none_match("*", e));
  CHECK(if_none_match(" * ", e));
  CHECK_FALSE(if_none_match(body_etag("{\"a\":2}"), e));
  CHECK_FALSE(if_none_match("", e));
}

TEST_CASE("etag if_none_match: lists with OWS and empty members") {
  std::string e = "\"c1-abc\"";
  CHECK(if_none_match("\"x\", \"c1-abc\"", e));
  CHECK(if_none_match("\"x\",\"c1-abc\"", e));
  CHECK(if_none_match(" , \"x\" ,\t, W/\"c1-abc\" , ", e));
  CHECK(if_none_match("\"c1-abc\", \"y\"", e));
  CHECK_FALSE(if_none_match("\"x\", \"y\"", e));
  // A comma inside an opaque-tag is part of it (etagc includes 0x2C).
  CHECK(if_none_match("\"a,b\"", "\"a,b\""));
  CHECK_FALSE(if_none_match("\"a,b\"", "\"a\""));
}

TEST_CASE("etag if_none_match: malformed members never match") {
  std::string e = "\"c1-abc\"";
  CHECK_FALSE(if_none_match("c1-abc", e));                 // unquoted
  CHECK_FALSE(if_none_match("\"c1-abc", e));               // unterminated
  CHECK_FALSE(if_none_match("w/\"c1-abc\"", e));           // "W/" is case-sensitive
  CHECK_FALSE(if_none_match("\"c1-abc\"x", e));            // trailing garbage
  CHECK_FALSE(if_none_match("\"c1 abc\"", "\"c1 abc\""));  // SP is not etagc
  CHECK_FALSE(if_none_match("*, \"c1-abc\"x", e));         // "*" only alone; garbage member
  // ...but a good member after a bad one still matches.
  CHECK(if_none_match("garbage, \"c1-abc\"", e));
  CHECK(if_none_match("\"c1-abc\"x, \"c1-abc\"", e));
  // A malformed etag argument matches nothing.
  CHECK_FALSE(if_none_match("c1-abc", "c1-abc"));
}
