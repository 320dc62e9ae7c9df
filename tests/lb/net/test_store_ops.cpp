// store_ops: the one script table, the pin_claim/pin_cas argument builders, "pool/backend"
// splitting and resolve_stored (only a backend configured now, in that pool).
#include <doctest.h>

#include "lb/core/pin_codec.h"
#include "lb/core/store_messages.h"
#include "lb/core/store_scripts.h"
#include "lb/net/runtime.h"
#include "lb/net/store_ops.h"

using namespace lb;
using namespace lb::net;

TEST_CASE("store ops: the script table follows StoreScript") {
  std::vector<std::string> b = store_script_bodies();
  REQUIRE(b.size() == 6);
  CHECK(b[StoreScript::pin_claim] == store_scripts::pin_claim);
  CHECK(b[StoreScript::pin_cas] == store_scripts::pin_cas);
  CHECK(b[StoreScript::pin_touch] == store_scripts::pin_touch);
  CHECK(b[StoreScript::fleet_sync] == store_scripts::fleet_sync);
  CHECK(b[StoreScript::quota_take] == store_scripts::quota_take);
  CHECK(b[StoreScript::quota_cool] == store_scripts::quota_cool);
}

TEST_CASE("store ops: claim and cas arguments") {
  SessionKey k{0x1234, 0xabcd};
  ClaimArgs c = claim_args("p:", k, "v1|k1|5|none", 60'000);
  CHECK(c.key == pin_key_text("p:", k));
  CHECK(c.args() == std::vector<std::string_view>{"v1|k1|5|none", "60000"});
  CHECK(key_of_pin_key(c.key) == k);
  CHECK_FALSE(key_of_pin_key("p:pin:xyz"));

  CasArgs a = cas_args("p:", k, "k1", "v1|k2|6|down", "k2", "host:1:0000000a", 1000);
  REQUIRE(a.args().size() == 5);
  CHECK(a.keys() == std::vector<std::string_view>{pin_key_text("p:", k)});
  CHECK(a.args()[0] == "k1");
  CHECK(a.args()[1] == "v1|k2|6|down");
  CHECK(a.args()[2] == "1000");
  CHECK(a.args()[3] == "p:pins");
  std::optional<PinMoved> m = decode_pin_moved(a.args()[4]);
  REQUIRE(m);
  CHECK(*m == PinMoved{k, "k1", "k2", "host:1:0000000a"});
}

TEST_CASE("store ops: pool/backend and resolve_stored") {
  auto pb = split_pool_backend("kupo/k1");
  REQUIRE(pb);
  CHECK(pb->pool == "kupo");
  CHECK(pb->backend == "k1");
  CHECK_FALSE(split_pool_backend("kupo"));
  CHECK_FALSE(split_pool_backend("/k1"));
  CHECK_FALSE(split_pool_backend("kupo/"));

  Runtime rt;
  for (auto [pool, backends] : {std::pair{"kupo", std::vector<const char*>{"k1", "k2"}},
                                std::pair{"bf", std::vector<const char*>{"b1"}}}) {
    RuntimePool p;
    p.name = pool;
    BackendRef next = pool == std::string("kupo") ? 10 : 20;
    for (const char* b : backends) {
      RuntimeBackend rb;
      rb.name = b;
      rb.ref = next++;
      p.backends.push_back(std::move(rb));
    }
    rt.pools.push_back(std::move(p));
  }
  CHECK(resolve_stored(rt, "kupo", "k2") == BackendRef{11});
  CHECK(resolve_stored(rt, "bf", "b1") == BackendRef{20});
  CHECK_FALSE(resolve_stored(rt, "kupo", "b1"));  // another pool's
  CHECK_FALSE(resolve_stored(rt, "kupo", "k9"));  // not configured now
  CHECK_FALSE(resolve_stored(rt, "gone", "k1"));
}
