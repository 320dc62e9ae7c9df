// Issue 13's simulated failures, as pure functions of injected time: forks, read-only-stale
// replicas and rollbacks in SimChain, and what the Kupo and Ogmios bodies show of them.
#include <doctest.h>

#include <string>

#include "bench/sim/kupo_api.h"
#include "bench/sim/ogmios_api.h"
#include "bench/sim/sim_chain.h"

using namespace bench;

TEST_CASE("sim_chain: a fork changes header hashes from its slot on, the same on every instance") {
  SimChain a(1000, 0, 20);
  SimChain b(1000, 0, 20);
  SimChain honest(1000, 0, 20);
  a.set_fork_at(960);
  b.set_fork_at(960);
  CHECK(a.hash_at(940) == honest.hash_at(940));  // below the fork: the common chain
  CHECK(a.hash_at(960) != honest.hash_at(960));
  CHECK(a.hash_at(1000) != honest.hash_at(1000));
  CHECK(a.hash_at(1000) == b.hash_at(1000));  // forked at the same slot: they agree
  CHECK(a.hash_at(980) != a.hash_at(1000));
  CHECK(a.hash_at(1000).size() == 64);
  b.set_fork_at(980);  // another fork point: another chain
  CHECK(b.hash_at(1000) != a.hash_at(1000));
  CHECK(b.hash_at(1000) != honest.hash_at(1000));
  CHECK(SimChain::header_hash(1000, std::nullopt) == SimChain::header_hash(1000));
  a.set_fork_at(std::nullopt);  // healed
  CHECK(a.hash_at(1000) == honest.hash_at(1000));
  CHECK(!a.fork_at());
}

TEST_CASE("sim_chain: read-only-stale freezes the checkpoint as node tip and keeps health 200") {
  SimChain c(1000, 0, 20);
  c.set_read_only_stale(true, 30'000);  // tip 1030, checkpoint 1020
  CHECK(c.read_only_stale());
  CHECK(c.checkpoint(500'000) == 1020);
  CHECK(c.node_tip(500'000) == 1020);  // its own checkpoint stands in for the node
  CHECK(c.health_status(500'000) == 200);
  CHECK(c.seconds_since_last_block(500'000) > 400);  // the staleness shows only here
  // freeze_tip differs: the node tip freezes and a lagging checkpoint turns health 202.
  SimChain f(1000, 0, 20);
  f.set_frozen(true, 30'000);
  f.set_lag(500);
  CHECK(f.health_status(500'000) == 202);
  c.set_lag(500);  // a lag cannot make a read-only-stale instance report "behind"
  CHECK(c.health_status(500'000) == 200);
  CHECK(c.checkpoint(500'000) == 1020);
  c.set_lag(0);
  c.set_read_only_stale(false, 500'000);  // the writer is back: the live tip again
  CHECK(c.node_tip(500'000) == 1500);
  CHECK(c.checkpoint(500'000) == 1500);
}

TEST_CASE("sim_chain: a rollback takes tip and checkpoint back N slots, then they move on") {
  SimChain c(1000, 0, 20);
  CHECK(c.checkpoint(100'000) == 1100);
  c.rollback(50, 100'000);
  CHECK(c.node_tip(100'000) == 1050);
  CHECK(c.checkpoint(100'000) == 1040);
  CHECK(c.health_status(100'000) == 200);  // the node rolled back too: Kupo sees no lag
  CHECK(c.rewound() == 50);
  CHECK(c.node_tip(110'000) == 1060);  // following the chain again
  c.rollback(20, 110'000);             // rollbacks add up
  CHECK(c.node_tip(110'000) == 1040);
  c.set_health(SimHealth::synced, 110'000);  // a re-synced instance: back at the network tip
  CHECK(c.node_tip(110'000) == 1110);
  CHECK(c.rewound() == 0);

  // A frozen tip goes back too.
  c.set_frozen(true, 110'000);
  c.rollback(30, 110'000);
  CHECK(c.node_tip(200'000) == 1080);
  c.set_frozen(false, 200'000);
  c.set_health(SimHealth::synced, 200'000);

  // So does a read-only-stale checkpoint, to a block.
  c.set_read_only_stale(true, 200'000);  // checkpoint 1200
  c.rollback(50, 200'000);
  CHECK(c.checkpoint(200'000) == 1140);
  CHECK(c.node_tip(200'000) == 1140);

  // Never below slot 0.
  SimChain z(10, 0, 20);
  z.rollback(1'000'000, 0);
  CHECK(z.node_tip(0) == 0);
  CHECK(z.node_tip(5'000) == 5);
}

TEST_CASE("kupo_api: points and checkpoints carry the fork's hashes") {
  SimChain c(100'000, 0, 20);
  c.set_fork_at(99'960);
  CHECK(kupo_api::point(99'940, c.fork_at()) == kupo_api::point(99'940));
  CHECK(kupo_api::point(100'000, c.fork_at()).find(c.hash_at(100'000)) != std::string::npos);
  CHECK(kupo_api::point(100'000, c.fork_at()) != kupo_api::point(100'000));
  const auto sample = kupo_api::checkpoint_sample(c, 0);
  REQUIRE(!sample.empty());
  CHECK(sample[0].find(c.hash_at(100'000)) != std::string::npos);
  kupo_api::MatchQuery all;
  CHECK(kupo_api::matches("addr1x", all, 100'000, c.fork_at()) ==
        kupo_api::matches("addr1x", all, 100'000));  // outputs far below the fork point
}

TEST_CASE("ogmios_api: lastKnownTip, tips and points carry the fork's hashes") {
  namespace api = ogmios_api;
  api::HealthInput h;
  h.tip_slot = 100'000;
  h.network_slot = 100'000;
  const std::string honest = api::health_json(h);
  CHECK(honest.find(SimChain::header_hash(100'000)) != std::string::npos);
  h.fork_at = 99'980;
  const std::string forked = api::health_json(h);
  CHECK(forked.find(SimChain::header_hash(100'000, 99'980)) != std::string::npos);
  CHECK(forked.find(SimChain::header_hash(100'000)) == std::string::npos);
  CHECK(forked.find("\"lastKnownTip\":{\"slot\":100000,") != std::string::npos);

  api::ChainView c{100'000, 20, 99'980};
  CHECK(api::tip_json(c).find(SimChain::header_hash(100'000, 99'980)) != std::string::npos);
  CHECK(api::point_json(99'960, c.fork_at) == api::point_json(99'960));
  CHECK(api::block_json(99'980, 20, c.fork_at).find(SimChain::header_hash(99'960)) !=
        std::string::npos);  // its ancestor is on the common chain
  // findIntersection: the honest point above the fork is not on this chain.
  api::Session s;
  auto parsed = api::parse_request(R"({"method":"findIntersection","params":{"points":[)" +
                                   api::point_json(100'000) + "]},\"id\":1}");
  REQUIRE(parsed.request);
  CHECK(api::dispatch(*parsed.request, s, c, true).reply.find("\"error\"") != std::string::npos);
  parsed = api::parse_request(R"({"method":"findIntersection","params":{"points":[)" +
                              api::point_json(100'000, c.fork_at) + "]},\"id\":1}");
  REQUIRE(parsed.request);
  CHECK(api::dispatch(*parsed.request, s, c, true).reply.find("\"intersection\"") !=
        std::string::npos);
}
