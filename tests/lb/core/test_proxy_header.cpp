// PROXY protocol headers: the examples of haproxy's proxy-protocol.txt (v1 TCP4, TCP6,
// UNKNOWN, the 107-byte worst case; v2 PROXY/LOCAL, TCP4/TCP6, UNIX and UDP, TLVs), every
// truncation of them (need_more, never bad or ok), and malformed ones. Address parsing is
// cross-checked against the C library's inet_pton.
#include <arpa/inet.h>
#include <doctest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "lb/core/proxy_header.h"

namespace {

using lb::parse_proxy_header;
using lb::ProxyParse;
using lb::ProxyStatus;

ProxyParse parse(const std::string& s) {
  return parse_proxy_header(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string v2(uint8_t ver_cmd, uint8_t fam, const std::string& body) {
  std::string s("\r\n\r\n\0\r\nQUIT\n", 12);
  s += static_cast<char>(ver_cmd);
  s += static_cast<char>(fam);
  s += static_cast<char>(body.size() >> 8);
  s += static_cast<char>(body.size() & 0xFF);
  return s + body;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s += static_cast<char>(x);
  return s;
}

// Every proper prefix of a complete header asks for more.
void check_prefixes(const std::string& h) {
  for (size_t n = 0; n < h.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    ProxyParse p = parse(h.substr(0, n));
    CHECK(p.status == ProxyStatus::need_more);
  }
}

std::string ip_text(const ProxyParse& p) {
  char out[64] = "?";
  inet_ntop(p.src_len == 4 ? AF_INET : AF_INET6, p.src, out, sizeof out);
  return out;
}

}  // namespace

TEST_CASE("proxy header v1: the spec's examples") {
  const std::string tcp4 = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
  ProxyParse p = parse(tcp4 + "GET / HTTP/1.1\r\n");
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(p.consumed == tcp4.size());
  CHECK(p.version == 1);
  CHECK_FALSE(p.local);
  CHECK(p.src_len == 4);
  CHECK(ip_text(p) == "192.168.0.1");
  CHECK(p.src_port == 56324);
  check_prefixes(tcp4);

  const std::string tcp6 =
      "PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";  // spec text: not literal
  CHECK(parse(tcp6).status == ProxyStatus::bad);
  const std::string worst6 =
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "65535 65535\r\n";
  CHECK(worst6.size() == 104);
  p = parse(worst6);
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(p.src_len == 16);
  CHECK(ip_text(p) == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  CHECK(p.src_port == 65535);
  check_prefixes(worst6);

  p = parse("PROXY TCP6 2001:db8::1 ::1 0 8080\r\n");
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(ip_text(p) == "2001:db8::1");
  CHECK(p.src_port == 0);

  for (std::string u : {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN 1.2.3.4 garbage here\r\n"}) {
    INFO(u);
    p = parse(u + "\x16\x03\x01");
    REQUIRE(p.status == ProxyStatus::ok);
    CHECK(p.local);
    CHECK(p.consumed == u.size());
  }
  // The spec's worst case: UNKNOWN with two full IPv6 addresses is exactly 107 bytes.
  const std::string worst =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  REQUIRE(worst.size() == 107);
  p = parse(worst);
  CHECK(p.status == ProxyStatus::ok);
  CHECK(p.consumed == 107);
  check_prefixes(worst);
}

TEST_CASE("proxy header v1: malformed lines are bad") {
  const char* bad[] = {
      "GET / HTTP/1.1\r\n",
      "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",       // two spaces
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",       // trailing space
      "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",          // a port missing
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",      // a field too many
      "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",       // leading zero
      "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",      // octet too big
      "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",          // three parts
      "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",            // IPv6 under TCP4
      "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",            // IPv4 under TCP6
      "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",    // port too big
      "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",      // port with a leading zero
      "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",       // signed port
      "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",        // not TCP
      "PROXY UNKNOWNX\r\n",                        // not UNKNOWN
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",          // LF without CR
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",         // CR without LF
      "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",       // tab
      "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",        // lower case
      "PROXY TCP6 1::2::3 ::1 1 2\r\n",            // two gaps
      "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",  // nine groups
      "PROXY TCP6 12345::1 ::1 1 2\r\n",           // five hex digits
  };
  for (const char* b : bad) {
    INFO(b);
    ProxyParse p = parse(b);
    CHECK(p.status == ProxyStatus::bad);
    CHECK(p.error != nullptr);
  }
  // Junk is refused at its first wrong byte, not after 107 bytes.
  CHECK(parse("G").status == ProxyStatus::bad);
  CHECK(parse("PROXX").status == ProxyStatus::bad);
  // No CRLF within 107 bytes.
  std::string longer = "PROXY UNKNOWN " + std::string(100, 'a');
  CHECK(parse(longer.substr(0, 106)).status == ProxyStatus::need_more);
  CHECK(parse(longer.substr(0, 107)).status == ProxyStatus::bad);
  CHECK(parse(std::string("PROXY UNKNOWN ") + std::string(92, 'a') + "\r\n").status ==
        ProxyStatus::bad);  // 108 bytes with its CRLF
}

TEST_CASE("proxy header: addresses agree with inet_pton") {
  const char* v4[] = {"0.0.0.0",   "255.255.255.255", "1.2.3.4", "01.2.3.4", "1.2.3.4.5", "1..2.3",
                      "256.1.1.1", "1.2.3.",          ".1.2.3",  "1.2.3.4a", "1234.1.1.1"};
  for (const char* a : v4) {
    INFO(a);
    uint8_t want[4];
    const bool ok = inet_pton(AF_INET, a, want) == 1;
    ProxyParse p = parse(std::string("PROXY TCP4 ") + a + " 1.1.1.1 1 2\r\n");
    CHECK((p.status == ProxyStatus::ok) == ok);
    if (ok && p.status == ProxyStatus::ok) CHECK(std::memcmp(p.src, want, 4) == 0);
  }
  const char* v6[] = {"::",
                      "::1",
                      "1::",
                      "1:2:3:4:5:6:7:8",
                      "1:2:3:4:5:6:7::",
                      "::2:3:4:5:6:7:8",
                      "1::8",
                      "::ffff:1.2.3.4",
                      "1:2:3:4:5:6:1.2.3.4",
                      "1:2:3:4:5:6:7:1.2.3.4",
                      ":1::",
                      "1:",
                      ":",
                      ":::",
                      "1:::2",
                      "fe80::1%eth0",
                      "ABCD:ef01::",
                      "1:2:3:4:5:6:7",
                      "00000::1",
                      "0000::1",
                      "::1.2.3",
                      "g::1",
                      "1::2:3::4",
                      "::ffff:01.2.3.4",
                      "1:2:3:4:5:6:7:8:9"};
  for (const char* a : v6) {
    INFO(a);
    uint8_t want[16];
    const bool ok = inet_pton(AF_INET6, a, want) == 1;
    ProxyParse p = parse(std::string("PROXY TCP6 ") + a + " ::1 1 2\r\n");
    CHECK((p.status == ProxyStatus::ok) == ok);
    if (ok && p.status == ProxyStatus::ok) CHECK(std::memcmp(p.src, want, 16) == 0);
  }
}

TEST_CASE("proxy header v2: PROXY TCP4 and TCP6, with and without TLVs") {
  const std::string a4 = bytes({10, 1, 2, 3, 192, 168, 0, 11, 0xDC, 0x04, 0x01, 0xBB});
  std::string h = v2(0x21, 0x11, a4);
  ProxyParse p = parse(h + "\x16\x03\x01");
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(p.version == 2);
  CHECK(p.consumed == 28);
  CHECK_FALSE(p.local);
  CHECK(ip_text(p) == "10.1.2.3");
  CHECK(p.src_port == 56324);
  check_prefixes(h);

  // A TLV (PP2_TYPE_AUTHORITY "example.com") and a NOOP after the addresses are skipped.
  std::string tlvs = bytes({0x02, 0x00, 0x0B}) + "example.com" + bytes({0x04, 0x00, 0x02, 0, 0});
  h = v2(0x21, 0x11, a4 + tlvs);
  p = parse(h);
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(p.consumed == 16 + 12 + tlvs.size());
  CHECK(ip_text(p) == "10.1.2.3");
  check_prefixes(h);

  std::string a6(36, '\0');
  const uint8_t src6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42};
  std::memcpy(a6.data(), src6, 16);
  a6[32] = 0x12;
  a6[33] = 0x34;
  h = v2(0x21, 0x21, a6);
  p = parse(h);
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(p.src_len == 16);
  CHECK(ip_text(p) == "2001:db8::42");
  CHECK(p.src_port == 0x1234);
  check_prefixes(h);
}

TEST_CASE("proxy header v2: LOCAL, UNSPEC, UDP and UNIX keep the socket's address") {
  ProxyParse p = parse(v2(0x20, 0x00, ""));
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(p.local);
  CHECK(p.consumed == 16);
  // LOCAL ignores the family and whatever address block follows.
  p = parse(v2(0x20, 0x11, std::string(12, '\x07')));
  REQUIRE(p.status == ProxyStatus::ok);
  CHECK(p.local);
  CHECK(p.consumed == 28);
  for (uint8_t fam : {0x00, 0x12, 0x22, 0x31, 0x32}) {
    INFO(int(fam));
    p = parse(v2(0x21, fam, std::string(fam >= 0x31 ? 216 : 12, '\x01')));
    REQUIRE(p.status == ProxyStatus::ok);
    CHECK(p.local);
  }
}

TEST_CASE("proxy header v2: malformed headers are bad") {
  CHECK(parse(v2(0x11, 0x11, std::string(12, '\0'))).status == ProxyStatus::bad);  // version 1
  CHECK(parse(v2(0x22, 0x11, std::string(12, '\0'))).status == ProxyStatus::bad);  // command 2
  CHECK(parse(v2(0x21, 0x13, std::string(12, '\0'))).status == ProxyStatus::bad);  // family
  CHECK(parse(v2(0x21, 0x41, std::string(12, '\0'))).status == ProxyStatus::bad);
  CHECK(parse(v2(0x21, 0x11, std::string(11, '\0'))).status == ProxyStatus::bad);  // short
  CHECK(parse(v2(0x21, 0x21, std::string(35, '\0'))).status == ProxyStatus::bad);
  // A length over the bound is refused at once, before its bytes arrive.
  std::string big = v2(0x21, 0x11, std::string(1025, '\0'));
  CHECK(parse(big.substr(0, 16)).status == ProxyStatus::bad);
  CHECK(parse(v2(0x21, 0x11, std::string(1024, '\0'))).status == ProxyStatus::ok);
  // A broken signature, at any of its bytes.
  const std::string good = v2(0x21, 0x11, std::string(12, '\0'));
  for (size_t i = 0; i < 12; ++i) {
    INFO("signature byte " << i);
    std::string s = good;
    s[i] = static_cast<char>(s[i] ^ 0x40);
    CHECK(parse(s).status == ProxyStatus::bad);
  }
  CHECK(parse("").status == ProxyStatus::need_more);
}
