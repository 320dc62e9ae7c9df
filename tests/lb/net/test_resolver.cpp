// Backend address books and their re-resolution on a real libuv loop (names from
// /etc/hosts only: "localhost"; a failing lookup is fed in, never asked of DNS).
#include <doctest.h>
#include <netdb.h>
#include <uv.h>

#include <algorithm>
#include <string>

#include "config/loader.h"
#include "lb/net/proxy_state.h"
#include "lb/net/resolver.h"
#include "lb/net/socket_address.h"

using namespace lb::net;

namespace {

sockaddr_storage ep(const char* ip, uint16_t port) {
  sockaddr_storage a{};
  REQUIRE(ip_sockaddr(ip, port, a));
  return a;
}

bool has(const AddressBook::List& l, const std::string& text) {
  return std::any_of(l.begin(), l.end(),
                     [&](const sockaddr_storage& a) { return format_endpoint(a) == text; });
}

}  // namespace

TEST_CASE("resolver: IP literals are their own single address, never looked up") {
  AddressBook v4("127.0.0.1", 80);
  CHECK(v4.literal());
  CHECK(v4.resolved());
  CHECK(describe(*v4.get()) == "127.0.0.1:80");
  AddressBook v6("::1", 443);
  CHECK(v6.literal());
  CHECK(describe(*v6.get()) == "[::1]:443");
  AddressBook name("localhost", 80);
  CHECK_FALSE(name.literal());
  CHECK_FALSE(name.resolved());
  std::string why = "x";
  CHECK(resolve_now(v4, why));
  CHECK(why == "x");  // nothing was looked up
}

TEST_CASE("resolver: every record kept, in order, deduplicated, with the book's port") {
  sockaddr_storage a = ep("127.0.0.1", 9), b = ep("::1", 9), c = ep("127.0.0.1", 7);
  addrinfo ai[3]{};
  ai[0].ai_family = AF_INET6;
  ai[0].ai_addr = reinterpret_cast<sockaddr*>(&b);
  ai[0].ai_addrlen = sizeof(sockaddr_in6);
  ai[0].ai_next = &ai[1];
  ai[1].ai_family = AF_INET;
  ai[1].ai_addr = reinterpret_cast<sockaddr*>(&a);
  ai[1].ai_addrlen = sizeof(sockaddr_in);
  ai[1].ai_next = &ai[2];
  ai[2].ai_family = AF_INET;  // the same address again (another socktype's record)
  ai[2].ai_addr = reinterpret_cast<sockaddr*>(&c);
  ai[2].ai_addrlen = sizeof(sockaddr_in);
  AddressBook::List l = addresses_of(ai, 1442);
  CHECK(describe(l) == "[::1]:1442, 127.0.0.1:1442");

  AddressBook book("example.test", 1442);
  bool failed = true;
  CHECK(book.apply_lookup(0, ai, failed) == "[::1]:1442, 127.0.0.1:1442");
  CHECK_FALSE(failed);
  book.set_preferred(1);
  // The same answer again changes nothing (and keeps the preferred address).
  CHECK(book.apply_lookup(0, ai, failed).empty());
  CHECK(book.preferred() == 1);
  // A failed lookup keeps the last good addresses.
  CHECK_FALSE(book.apply_lookup(UV_EAI_NONAME, nullptr, failed).empty());
  CHECK(failed);
  CHECK(describe(*book.get()) == "[::1]:1442, 127.0.0.1:1442");
  // A different answer replaces them and starts again from the first.
  ai[0].ai_next = nullptr;
  CHECK(book.apply_lookup(0, ai, failed) == "[::1]:1442");
  CHECK(book.preferred() == 0);
}

TEST_CASE("resolver: localhost resolves now, and again on the loop when due") {
  config::LoadResult r = config::load_string(R"(
listeners: [{name: l, listen: 127.0.0.1:0, routes: [{prefix: /, pool: p}]}]
pools:
  p:
    kind: http
    resolve_interval: 1s
    backends: [{name: name, address: localhost:1442}, {name: ip, address: 127.0.0.1:1443}]
)",
                                             "t.yaml");
  REQUIRE(r.config);
  ProxyState state(100, 1000);
  state.runtime.store(build_runtime(*r.config, state.registry));
  const RuntimeBackend& name = state.runtime.load()->pools[0].backends[0];
  const RuntimeBackend& ip = state.runtime.load()->pools[0].backends[1];
  REQUIRE(name.resolved());
  CHECK(has(*name.addrs->get(), "127.0.0.1:1442"));

  uv_loop_t loop;
  uv_loop_init(&loop);
  {
    Resolver res(&loop, state);
    // The first tick only starts the interval of a name resolved at build time.
    res.tick();
    CHECK(res.answered() == 0);
    CHECK_FALSE(name.addrs->in_flight);
    // Pretend the name moved away; when due, the lookup brings the real address back.
    name.addrs->publish({ep("::1", 1442)});
    name.addrs->next_due_ms = 1;
    res.tick();
    CHECK(name.addrs->in_flight);
    CHECK_FALSE(ip.addrs->in_flight);  // literals are never looked up
    for (int i = 0; i < 500 && res.answered() == 0; ++i) uv_run(&loop, UV_RUN_ONCE);
    CHECK(res.answered() == 1);
    CHECK(has(*name.addrs->get(), "127.0.0.1:1442"));
    CHECK(name.addrs->next_due_ms >= uv_now(&loop) + 900);
    CHECK(describe(*ip.addrs->get()) == "127.0.0.1:1443");
    res.stop();
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("resolver: a reload that keeps a backend's address keeps its book") {
  const char* yaml = R"(
listeners: [{name: l, listen: 127.0.0.1:0, routes: [{prefix: /, pool: p}]}]
pools:
  p: {kind: http, backends: [{name: a, address: localhost:1}, {name: b, address: localhost:2}]}
)";
  const char* moved = R"(
listeners: [{name: l, listen: 127.0.0.1:0, routes: [{prefix: /, pool: p}]}]
pools:
  p: {kind: http, backends: [{name: a, address: localhost:1}, {name: b, address: localhost:3}]}
)";
  ProxyState state(100, 1000);
  auto first = build_runtime(*config::load_string(yaml, "t.yaml").config, state.registry);
  auto second =
      build_runtime(*config::load_string(moved, "t.yaml").config, state.registry, first.get());
  CHECK(second->pools[0].backends[0].addrs == first->pools[0].backends[0].addrs);
  CHECK(second->pools[0].backends[1].addrs != first->pools[0].backends[1].addrs);
  CHECK(describe(*second->pools[0].backends[1].addrs->get()) == "127.0.0.1:3");
}
