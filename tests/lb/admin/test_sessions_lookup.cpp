// GET /sessions/<hash>: from an access-log session value to the user's pin.
#include <doctest.h>

#include <string>

#include "lb/admin/sessions.h"
#include "lb/core/balancer.h"
#include "lb/core/flat_json.h"
#include "lb/net/access_log.h"

using namespace lb;

namespace {

constexpr uint64_t kSeed = 0x5eed;

struct Fixture {
  SessionTable table{1000, 60'000, 4};
  net::Registry registry;
  BackendRef k1 = registry.backend("kupo", "kupo-1").ref;
  BackendRef k2 = registry.backend("kupo", "kupo-2").ref;
  SessionKey user = pool_session_key(make_session_key(KeySource::header, "alice"), 7);
  SessionKey other = pool_session_key(make_session_key(KeySource::header, "bob"), 7);
};

}  // namespace

TEST_CASE("sessions lookup: the access log's hash finds the pin, slot, last seen and move") {
  Fixture f;
  f.table.pin(f.user, f.k1, 1'000);
  f.table.pin(f.other, f.k2, 1'000);
  f.table.record_slot(f.user, 140'000'020);
  const std::string hash = net::session_hash_hex(f.user, kSeed);

  admin::SessionsAnswer a = admin::session_lookup(hash, f.table, f.registry, kSeed, 4'000, 90'000);
  REQUIRE(a.status == 200);
  auto j = FlatJson::parse(a.body);
  REQUIRE(j);
  CHECK(j->find("session")->text == hash);
  CHECK(j->find("pool")->text == "kupo");
  CHECK(j->find("backend")->text == "kupo-1");
  CHECK(j->find("last_slot")->as_count() == 140'000'020u);
  CHECK(j->find("idle_ms")->as_count() == 3'000u);
  CHECK(j->find("last_seen_unix_ms")->as_count() == 87'000u);
  CHECK(j->find("last_move")->type == JsonValue::Type::null);  // never moved
  // The raw key never shows, nor its halves.
  CHECK(a.body.find(std::to_string(f.user.lo)) == std::string::npos);

  // Upper-case hex is the same hash.
  std::string upper = hash;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(admin::session_lookup(upper, f.table, f.registry, kSeed, 4'000, 90'000).status == 200);

  // A move keeps its reason with the pin; last_slot survives the move.
  f.table.pin(f.user, f.k2, 5'000, static_cast<uint8_t>(MoveReason::fork));
  j = FlatJson::parse(admin::session_lookup(hash, f.table, f.registry, kSeed, 5'000, 90'000).body);
  REQUIRE(j);
  CHECK(j->find("backend")->text == "kupo-2");
  CHECK(j->find("last_move")->text == "fork");
  CHECK(j->find("last_slot")->as_count() == 140'000'020u);

  // Another process (another seed) never matches this hash.
  CHECK(admin::session_lookup(hash, f.table, f.registry, kSeed + 1, 5'000, 90'000).status == 404);
}

TEST_CASE("sessions lookup: 404 for an unknown hash, 400 for a malformed one, with a reason") {
  Fixture f;
  f.table.pin(f.user, f.k1, 1'000);
  admin::SessionsAnswer a =
      admin::session_lookup("0123456789abcdef", f.table, f.registry, kSeed, 1'000, 1'000);
  CHECK(a.status == 404);
  CHECK(FlatJson::parse(a.body)->find("error")->text.find("no session") != std::string::npos);
  for (const char* bad : {"", "0123", "0123456789abcdeg", "0123456789abcdef0", "../status"}) {
    a = admin::session_lookup(bad, f.table, f.registry, kSeed, 1'000, 1'000);
    CHECK(a.status == 400);
    CHECK(FlatJson::parse(a.body)->find("error") != nullptr);
  }
  // Erased: gone.
  f.table.erase(f.user);
  CHECK(admin::session_lookup(net::session_hash_hex(f.user, kSeed), f.table, f.registry, kSeed,
                              1'000, 1'000)
            .status == 404);
}

TEST_CASE("session table: peek reads a pin without refreshing it; pin keeps the move reason") {
  SessionTable t(100, 1'000, 1);
  SessionKey k{1, 2};
  CHECK(!t.peek(k));
  t.pin(k, 3, 0);
  t.record_slot(k, 77);
  auto p = t.peek(k);
  REQUIRE(p);
  CHECK(p->backend == 3);
  CHECK(p->last_slot == 77);
  CHECK(p->last_move == 0);
  t.pin(k, 3, 10, static_cast<uint8_t>(MoveReason::lag));  // same backend: not a move
  CHECK(t.peek(k)->last_move == 0);
  t.pin(k, 4, 20, static_cast<uint8_t>(MoveReason::lag));
  CHECK(t.peek(k)->last_move == static_cast<uint8_t>(MoveReason::lag));
  // peek does not refresh: the entry still expires from its last real use (t = 20).
  CHECK(t.peek(k));
  CHECK(!t.touch(k, 1'500));
}
