#include <doctest.h>

#include <string>

#include "lb/admin/token_compare.h"

using lb::admin::token_equals;

TEST_CASE("token compare: equal tokens match") {
  CHECK(token_equals("s3cret-token", "s3cret-token"));
  const std::string big(4096, 'k');
  CHECK(token_equals(big, std::string(4096, 'k')));
}

TEST_CASE("token compare: a different byte anywhere does not match") {
  const std::string secret = "abcdefghijklmnop";
  for (size_t i = 0; i < secret.size(); ++i) {
    std::string guess = secret;
    guess[i] ^= 0x01;
    CAPTURE(i);
    CHECK_FALSE(token_equals(guess, secret));
  }
}

TEST_CASE("token compare: different lengths never match, prefixes included") {
  CHECK_FALSE(token_equals("abc", "abcd"));
  CHECK_FALSE(token_equals("abcd", "abc"));
  CHECK_FALSE(token_equals("", "abc"));
  CHECK_FALSE(token_equals("abc", ""));
  CHECK(token_equals("", ""));
  // A NUL inside is a byte like any other, not an end of string.
  CHECK_FALSE(token_equals(std::string("ab\0d", 4), std::string("ab\0c", 4)));
}
