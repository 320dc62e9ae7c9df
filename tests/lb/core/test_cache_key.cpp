#include <doctest.h>

#include <cstdint>
#include <string>

#include "lb/core/cache_key.h"

using namespace lb;

namespace {
// xxHash's sanity buffer (cli/xsum_sanity_check.c XSUM_fillTestBuffer).
std::string sanity_buffer(size_t len) {
  std::string b(len, '\0');
  uint64_t gen = 2654435761U;
  for (size_t i = 0; i < len; ++i) {
    b[i] = static_cast<char>(gen >> 56);
    gen *= 11400714785074694797ULL;
  }
  return b;
}
constexpr uint64_t kPrime32 = 2654435761U;
}  // namespace

TEST_CASE("cache_key is seeded XXH3-128 (xxHash's published vectors)") {
  // XSUM_XXH128_testdata: {len, seed, {low, high}}.
  CHECK(cache_key(0, "") == CacheKey{0x6001C324468D497FULL, 0x99AA06D3014798D8ULL});
  CHECK(cache_key(kPrime32, "") == CacheKey{0x5444F7869C671AB0ULL, 0x92220AE55E14AB50ULL});
  CHECK(cache_key(kPrime32, sanity_buffer(12)) ==
        CacheKey{0x9BE9F9A67F3C7DFBULL, 0xD7E09D518A3405D3ULL});
  CHECK(cache_key(kPrime32, sanity_buffer(222)) ==
        CacheKey{0xAE995BB8AF917A8DULL, 0x91820016621E97F1ULL});
  // The salt separates pools.
  CHECK_FALSE(cache_key(1, "/datums/x\n\n") == cache_key(2, "/datums/x\n\n"));
}

TEST_CASE("cache_key canonical_request: layout, trimming and case") {
  std::string s;
  canonical_request(s, "/datums/ab", "", "", "");
  CHECK(s == "/datums/ab\n\n");
  canonical_request(s, "/metadata/12", "transaction_id=Ab", " Application/JSON\t", "GZIP, br ");
  CHECK(s == "/metadata/12?transaction_id=Ab\napplication/json\ngzip, br");
  // The query stays byte-exact; the path is not lower-cased.
  std::string t;
  canonical_request(t, "/Metadata/12", "transaction_id=ab", "application/json", "gzip, br");
  CHECK(t != s);
  canonical_request(t, "/metadata/12", "transaction_id=Ab", "application/json", "gzip, br");
  CHECK(t == s);
  // Fields cannot slide into each other: an Accept value moved to Accept-Encoding differs.
  std::string a, b;
  canonical_request(a, "/x", "", "text/plain", "");
  canonical_request(b, "/x", "", "", "text/plain");
  CHECK(a != b);
  CHECK_FALSE(cache_key(7, a) == cache_key(7, b));
}

TEST_CASE("cache_key canonical_request reuses the output's capacity") {
  std::string s;
  s.reserve(256);
  const char* before = s.data();
  canonical_request(s, "/checkpoints/99", "strict", "application/json", "identity");
  CHECK(s.data() == before);
  CHECK(s == "/checkpoints/99?strict\napplication/json\nidentity");
}
