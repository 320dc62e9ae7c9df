// Session key extraction (DESIGN.md "Pinning"): order, fall-through, path-token stripping,
// cookie/header parsing, client-IP grouping and Cardano stake credentials.
#include <doctest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/cip19.h"
#include "lb/core/key_extractor.h"

namespace {

using lb::Extraction;
using lb::ExtractorSpec;
using lb::HeaderView;
using lb::KeySource;
using lb::make_session_key;
using lb::RequestView;

// CIP-19 mainnet vectors: base (type 0), enterprise (type 6) and reward (type 14) addresses
// of one payment key and one stake key.
constexpr std::string_view kBase =
    "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2"
    "wywfgse35a3x";
constexpr std::string_view kEnterprise =
    "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8";
constexpr std::string_view kStake = "stake1uyehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gh6ffgw";

// A request under construction; views point into its members, so keep it alive.
struct Req {
  std::string target = "/";
  std::vector<HeaderView> headers;
  std::vector<uint8_t> ip;
  RequestView view() const { return RequestView{"GET", target, headers, ip}; }
};

Extraction run(const std::vector<ExtractorSpec>& specs, const Req& r) {
  return lb::extract_key(specs, r.view());
}

const ExtractorSpec kPath{KeySource::path, "/s/"};
const ExtractorSpec kCookie{KeySource::cookie, "corral"};
const ExtractorSpec kHeader{KeySource::header, "X-Session-Key"};
const ExtractorSpec kAddress{KeySource::address, ""};
const ExtractorSpec kIp{KeySource::client_ip, ""};
const std::vector<ExtractorSpec> kAll = {kPath, kCookie, kHeader, kAddress, kIp};

std::string forwarded(const Extraction& e) {
  return (e.forward_needs_slash ? "/" : "") + std::string(e.forward_target);
}

}  // namespace

TEST_CASE("extract: path token is the key and its prefix is stripped") {
  Req r;
  r.target = "/s/tok123/kupo/matches/*?unspent";
  Extraction e = run(kAll, r);
  REQUIRE(e.found);
  CHECK(e.source == KeySource::path);
  CHECK(e.key == make_session_key(KeySource::path, "tok123"));
  CHECK(e.forward_target == "/kupo/matches/*?unspent");
  CHECK_FALSE(e.forward_needs_slash);
  // The forwarded target is a view into the request, not a copy.
  CHECK(e.forward_target.data() == r.target.data() + 9);

  r.target = "/s/tok123";
  e = run(kAll, r);
  CHECK(e.key == make_session_key(KeySource::path, "tok123"));
  CHECK(e.forward_target == "");
  CHECK(e.forward_needs_slash);
  CHECK(forwarded(e) == "/");

  r.target = "/s/tok123?x=1";
  e = run(kAll, r);
  CHECK(e.key == make_session_key(KeySource::path, "tok123"));
  CHECK(e.forward_target == "?x=1");
  CHECK(e.forward_needs_slash);
  CHECK(forwarded(e) == "/?x=1");

  r.target = "/s/tok123/";
  e = run(kAll, r);
  CHECK(e.forward_target == "/");
  CHECK_FALSE(e.forward_needs_slash);

  // Different tokens are different users.
  r.target = "/s/tok124/kupo";
  CHECK(run(kAll, r).key != make_session_key(KeySource::path, "tok123"));
}

TEST_CASE("extract: a path that does not match is forwarded untouched") {
  Req r;
  r.ip = {10, 0, 0, 1};
  for (const char* t :
       {"/kupo/health", "/s/", "/s//kupo", "/s?x=1", "/sx/tok/kupo", "/S/tok/x", "/x/s/tok/y"}) {
    CAPTURE(t);
    r.target = t;
    Extraction e = run(kAll, r);
    CHECK(e.source == KeySource::client_ip);  // fell through to the IP
    CHECK(e.forward_target == t);
    CHECK(e.forward_target.data() == r.target.data());
    CHECK_FALSE(e.forward_needs_slash);
  }
}

TEST_CASE("extract: a prefix written without its trailing slash still needs one") {
  const std::vector<ExtractorSpec> specs = {{KeySource::path, "/s"}};
  Req r;
  r.target = "/s/abc/rest";
  Extraction e = run(specs, r);
  REQUIRE(e.found);
  CHECK(e.key == make_session_key(KeySource::path, "abc"));
  CHECK(e.forward_target == "/rest");
  r.target = "/sabc/rest";
  e = run(specs, r);
  CHECK_FALSE(e.found);
  CHECK(e.forward_target == "/sabc/rest");
  // An empty prefix never matches (it would take the first segment of every path).
  r.target = "/abc/rest";
  CHECK_FALSE(run({{KeySource::path, ""}}, r).found);
}

TEST_CASE("extract: the path prefix is stripped even when an earlier extractor wins") {
  Req r;
  r.target = "/s/tok/kupo/health";
  r.headers = {{"Cookie", "corral=user-7"}};
  Extraction e = run({kCookie, kPath}, r);
  REQUIRE(e.found);
  CHECK(e.source == KeySource::cookie);
  CHECK(e.key == make_session_key(KeySource::cookie, "user-7"));
  CHECK(e.forward_target == "/kupo/health");

  // Likewise when the IP wins because the path extractor comes later.
  r.headers.clear();
  r.ip = {192, 0, 2, 1};
  e = run({kIp, kPath}, r);
  CHECK(e.source == KeySource::client_ip);
  CHECK(e.forward_target == "/kupo/health");

  // And when nothing yields a key at all.
  r.target = "/s/tok";
  e = run({kCookie, {KeySource::path, "/other/"}, kPath}, r);
  CHECK(e.forward_target == "");
  CHECK(e.forward_needs_slash);
}

TEST_CASE("extract: cookies are parsed across headers, tolerantly") {
  Req r;
  auto key = [&](std::vector<HeaderView> h) {
    r.headers = std::move(h);
    Extraction e = run({kCookie}, r);
    return e.found ? e.key : lb::SessionKey{};
  };
  const lb::SessionKey want = make_session_key(KeySource::cookie, "abc");
  CHECK(key({{"Cookie", "corral=abc"}}) == want);
  CHECK(key({{"cookie", "a=1; corral=abc; b=2"}}) == want);
  CHECK(key({{"COOKIE", "a=1;corral=abc"}}) == want);
  CHECK(key({{"Cookie", "  a=1 ;\t corral = abc \t; b=2"}}) == want);
  CHECK(key({{"Cookie", "corral=\"abc\""}}) == want);
  CHECK(key({{"Cookie", "a=1"}, {"Accept", "x"}, {"Cookie", "corral=abc"}}) == want);
  // An empty value is skipped in favour of a later one.
  CHECK(key({{"Cookie", "corral=; corral=abc"}}) == want);
  CHECK(key({{"Cookie", "corral=\"\""}, {"Cookie", "corral=abc"}}) == want);
  // The first non-empty one wins.
  CHECK(key({{"Cookie", "corral=abc; corral=zzz"}}) == want);
  // Names match exactly: no case folding, no substrings.
  CHECK(key({{"Cookie", "Corral=abc"}}).empty());
  CHECK(key({{"Cookie", "xcorral=abc; corralx=abc"}}).empty());
  CHECK(key({{"Cookie", "corral"}}).empty());
  CHECK(key({{"Cookie", "corral="}}).empty());
  CHECK(key({{"Cookie", ""}}).empty());
  CHECK(key({{"Set-Cookie", "corral=abc"}}).empty());
  CHECK(key({{"X-Cookie", "corral=abc"}}).empty());
  // A value may contain '='.
  CHECK(key({{"Cookie", "corral=a=b"}}) == make_session_key(KeySource::cookie, "a=b"));
}

TEST_CASE("extract: header name is case-insensitive, value trimmed and non-empty") {
  Req r;
  auto key = [&](std::vector<HeaderView> h) {
    r.headers = std::move(h);
    Extraction e = run({kHeader}, r);
    return e.found ? e.key : lb::SessionKey{};
  };
  const lb::SessionKey want = make_session_key(KeySource::header, "u-1");
  CHECK(key({{"X-Session-Key", "u-1"}}) == want);
  CHECK(key({{"x-session-key", " \tu-1\t "}}) == want);
  CHECK(key({{"X-Other", "zzz"}, {"X-SESSION-KEY", "u-1"}}) == want);
  CHECK(key({{"X-Session-Key", "  "}, {"X-Session-Key", "u-1"}}) == want);
  CHECK(key({{"X-Session-Key", "u-1"}, {"X-Session-Key", "u-2"}}) == want);
  CHECK(key({{"X-Session-Key", " "}}).empty());
  CHECK(key({{"X-Session-Keys", "u-1"}}).empty());
  CHECK(key({}).empty());
}

TEST_CASE("extract: extractors run in the configured order") {
  Req r;
  r.target = "/kupo/matches/" + std::string(kBase);
  r.headers = {{"X-Session-Key", "h"}, {"Cookie", "corral=c"}};
  r.ip = {198, 51, 100, 7};

  Extraction e = run({kCookie, kHeader}, r);
  CHECK(e.source == KeySource::cookie);
  CHECK(e.key == make_session_key(KeySource::cookie, "c"));
  e = run({kHeader, kCookie}, r);
  CHECK(e.source == KeySource::header);
  CHECK(e.key == make_session_key(KeySource::header, "h"));
  e = run({kIp, kAddress, kCookie}, r);
  CHECK(e.source == KeySource::client_ip);
  e = run({kAddress, kIp}, r);
  CHECK(e.source == KeySource::address);
  CHECK(run(kAll, r).source == KeySource::cookie);
}

TEST_CASE("extract: absent sources fall through to the next extractor") {
  Req r;
  r.target = "/kupo/health";
  r.ip = {198, 51, 100, 7};
  Extraction e = run(kAll, r);
  CHECK(e.source == KeySource::client_ip);
  CHECK(e.key == make_session_key(KeySource::client_ip, std::string_view("\xc6\x33\x64\x07", 4)));

  r.headers = {{"X-Session-Key", "h"}};
  CHECK(run(kAll, r).source == KeySource::header);
  r.target = "/matches/" + std::string(kStake);
  r.headers = {{"Cookie", "other=1"}};
  CHECK(run(kAll, r).source == KeySource::address);

  // No source at all: no key, nothing stripped.
  r.ip.clear();
  r.target = "/kupo/health";
  e = run(kAll, r);
  CHECK_FALSE(e.found);
  CHECK(e.key.empty());
  CHECK(e.forward_target == "/kupo/health");
  CHECK_FALSE(run({}, r).found);
}

TEST_CASE("extract: the same bytes from different sources are different users") {
  Req r;
  r.target = "/s/abc/x";
  r.headers = {{"Cookie", "corral=abc"}, {"X-Session-Key", "abc"}};
  const lb::SessionKey p = run({kPath}, r).key;
  const lb::SessionKey c = run({kCookie}, r).key;
  const lb::SessionKey h = run({kHeader}, r).key;
  CHECK(p != c);
  CHECK(p != h);
  CHECK(c != h);
  r.ip = {'a', 'b', 'c', 'd'};
  r.headers = {{"X-Session-Key", "abcd"}};
  CHECK(run({kIp}, r).key != run({kHeader}, r).key);
}

TEST_CASE("extract: client IP, IPv4-mapped IPv6 and /64 grouping") {
  auto ip_key = [](std::vector<uint8_t> ip) {
    Req r;
    r.ip = std::move(ip);
    Extraction e = run({kIp}, r);
    return e.found ? e.key : lb::SessionKey{};
  };
  const lb::SessionKey v4 = ip_key({203, 0, 113, 9});
  CHECK_FALSE(v4.empty());
  CHECK(v4 == make_session_key(KeySource::client_ip, std::string_view("\xcb\x00\x71\x09", 4)));
  CHECK(v4 != ip_key({203, 0, 113, 10}));
  // ::ffff:203.0.113.9 is the same client as 203.0.113.9.
  CHECK(ip_key({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 9}) == v4);
  // ::203.0.113.9 (deprecated IPv4-compatible) and 64:ff9b::/96 are not mapped addresses.
  CHECK(ip_key({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 203, 0, 113, 9}) != v4);
  CHECK(ip_key({0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 203, 0, 113, 9}) != v4);

  // 2001:db8:1:2::/64 — the interface half changes, the key does not.
  const lb::SessionKey a =
      ip_key({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88});
  const lb::SessionKey b =
      ip_key({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1});
  const lb::SessionKey other64 =
      ip_key({0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88});
  CHECK(a == b);
  CHECK(a != other64);
  CHECK(a == make_session_key(KeySource::client_ip,
                              std::string_view("\x20\x01\x0d\xb8\x00\x01\x00\x02", 8)));

  // Unknown or malformed addresses give no key.
  CHECK(ip_key({}).empty());
  CHECK(ip_key({1, 2, 3}).empty());
  CHECK(ip_key(std::vector<uint8_t>(8, 1)).empty());
}

TEST_CASE("extract: Cardano addresses of one wallet share a key") {
  // Another base address of the wallet: a different payment key hash, the same stake key.
  auto base = lb::bech32_decode(kBase)->data;
  std::vector<uint8_t> sibling_bytes = base;
  for (size_t i = 1; i < 29; ++i) sibling_bytes[i] ^= 0x5a;
  const std::string sibling = lb::bech32_encode("addr", sibling_bytes);
  REQUIRE(sibling != kBase);
  REQUIRE(lb::bech32_decode(sibling).has_value());

  Req r;
  r.ip = {203, 0, 113, 9};
  r.target = "/matches/" + std::string(kBase) + "?unspent";
  Extraction first = run({kAddress, kIp}, r);
  REQUIRE(first.found);
  CHECK(first.source == KeySource::address);
  CHECK(first.key == make_session_key(KeySource::address, *lb::stake_key_material(kBase)));

  r.target = "/matches/" + sibling;
  Extraction second = run({kAddress, kIp}, r);
  CHECK(second.source == KeySource::address);
  CHECK(second.key == first.key);

  r.target = "/accounts/" + std::string(kStake);  // the wallet's reward address
  CHECK(run({kAddress, kIp}, r).key == first.key);

  // A different stake key is a different user.
  std::vector<uint8_t> stranger = base;
  stranger[40] ^= 1;
  r.target = "/matches/" + lb::bech32_encode("addr", stranger);
  Extraction third = run({kAddress, kIp}, r);
  CHECK(third.source == KeySource::address);
  CHECK(third.key != first.key);
}

TEST_CASE("extract: an enterprise address falls through to the next extractor") {
  Req r;
  r.ip = {203, 0, 113, 9};
  r.target = "/matches/" + std::string(kEnterprise) + "?unspent";
  Extraction e = run({kAddress, kIp}, r);
  REQUIRE(e.found);
  CHECK(e.source == KeySource::client_ip);
  // Kupo credential patterns are not addresses either.
  r.target = "/matches/*/337b62cfff6403a06a3acbc34f8c46003c69fe79a3628cefa9c47251";
  CHECK(run({kAddress, kIp}, r).source == KeySource::client_ip);
}

TEST_CASE("extract: the address extractor reads the path after the token is stripped") {
  Req r;
  r.ip = {203, 0, 113, 9};
  // The token itself is a valid reward address, but it is the token, not a queried address.
  r.target = "/s/" + std::string(kStake) + "/kupo/health";
  Extraction e = run({kAddress, kPath}, r);
  REQUIRE(e.found);
  CHECK(e.source == KeySource::path);
  CHECK(e.forward_target == "/kupo/health");
  // With an address after the token, the address extractor finds it.
  r.target = "/s/tok/kupo/matches/" + std::string(kBase);
  e = run({kAddress, kPath}, r);
  CHECK(e.source == KeySource::address);
  CHECK(e.key == make_session_key(KeySource::address, *lb::stake_key_material(kBase)));
  CHECK(e.forward_target == "/kupo/matches/" + std::string(kBase));
}
