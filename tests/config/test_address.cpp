#include <doctest.h>

#include "config/address.h"

using config::parse_address;

TEST_CASE("address: IPv4, bracketed IPv6 and host names") {
  auto a = parse_address("127.0.0.1:1442");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 1442);
  CHECK(a->text == "127.0.0.1:1442");

  auto b = parse_address("[::1]:8080");
  REQUIRE(b);
  CHECK(b->host == "::1");  // brackets dropped: ready for inet_pton
  CHECK(b->port == 8080);
  CHECK(b->text == "[::1]:8080");

  auto c = parse_address("cardano-preprod.blockfrost.io:443");
  REQUIRE(c);
  CHECK(c->host == "cardano-preprod.blockfrost.io");
  CHECK(c->port == 443);

  auto d = parse_address("[2001:db8::10]:65535");
  REQUIRE(d);
  CHECK(d->host == "2001:db8::10");
  CHECK(d->port == 65535);

  CHECK(parse_address("localhost:1")->port == 1);
  CHECK(parse_address("0.0.0.0:80")->host == "0.0.0.0");
  CHECK(parse_address("[::]:80")->host == "::");
  CHECK(parse_address("my_host-1:80"));
}

TEST_CASE("address: malformed addresses are rejected with a reason") {
  struct Case {
    const char* text;
    const char* why;
  };
  for (Case c : {Case{"", "expected host:port"},
                 Case{"127.0.0.1", "expected host:port"},
                 Case{":8080", "empty host"},
                 Case{"[]:80", "empty host"},
                 Case{"host:", "missing port"},
                 Case{"host:0", "1..65535"},
                 Case{"host:65536", "1..65535"},
                 Case{"host:99999999", "1..65535"},
                 Case{"host:-1", "not a number"},
                 Case{"host:+80", "not a number"},
                 Case{"host:80a", "not a number"},
                 Case{"host: 80", "not a number"},
                 Case{"::1:8080", "bracketed"},
                 Case{"2001:db8::1:443", "bracketed"},
                 Case{"[::1:8080", "missing ']'"},
                 Case{"[::1]8080", "expected host:port"},
                 Case{"[::1]", "expected host:port"},
                 Case{"[nothex]:80", "invalid IPv6"},
                 Case{"[127.0.0.1]:80", "invalid IPv6"},
                 Case{"256.1.1.1:80", "invalid IPv4"},
                 Case{"1.2.3:80", "invalid IPv4"},
                 Case{"1.2.3.4.5:80", "invalid IPv4"},
                 Case{"1..2.3:80", "invalid IPv4"},
                 Case{"bad host:80", "invalid host name"},
                 Case{"héllo:80", "invalid host name"},
                 Case{"a/b:80", "invalid host name"}}) {
    INFO(c.text);
    std::string why;
    CHECK_FALSE(parse_address(c.text, &why).has_value());
    CHECK(why.find(c.why) != std::string::npos);
  }
}

TEST_CASE("address: listen clashes include wildcards") {
  auto A = [](const char* s) { return *parse_address(s); };
  CHECK(config::listen_addresses_conflict(A("127.0.0.1:80"), A("127.0.0.1:80")));
  CHECK_FALSE(config::listen_addresses_conflict(A("127.0.0.1:80"), A("127.0.0.1:81")));
  CHECK_FALSE(config::listen_addresses_conflict(A("127.0.0.1:80"), A("127.0.0.2:80")));
  CHECK(config::listen_addresses_conflict(A("0.0.0.0:80"), A("127.0.0.1:80")));
  CHECK(config::listen_addresses_conflict(A("127.0.0.1:80"), A("0.0.0.0:80")));
  CHECK_FALSE(config::listen_addresses_conflict(A("0.0.0.0:80"), A("[::1]:80")));
  CHECK(config::listen_addresses_conflict(A("[::]:80"), A("127.0.0.1:80")));
  CHECK(config::listen_addresses_conflict(A("LocalHost:80"), A("localhost:80")));
}

TEST_CASE("port 0 is an ephemeral listen port, never a backend port") {
  CHECK_FALSE(config::parse_address("127.0.0.1:0").has_value());
  auto a = config::parse_address("127.0.0.1:0", nullptr, true);
  REQUIRE(a.has_value());
  CHECK(a->port == 0);
  CHECK_FALSE(config::listen_addresses_conflict(*a, *a));
}
