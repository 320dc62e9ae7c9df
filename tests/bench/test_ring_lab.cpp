#include <doctest.h>

#include <set>
#include <string>
#include <vector>

#include "bench/ring_lab.h"
#include "lb/core/balancer.h"
#include "lb/core/selector.h"

using namespace bench;

TEST_CASE("ring lab: keys are distinct and backends are named kupo-1..n") {
  std::set<uint64_t> seen;
  for (uint64_t i = 0; i < 10000; ++i) seen.insert(lab_key(i));
  CHECK(seen.size() == 10000);
  const auto pool = lab_backends(5);
  REQUIRE(pool.size() == 5);
  // A pool of n + 1 extends the pool of n: "add one" appends, "remove one" drops the last.
  const auto bigger = lab_backends(6);
  for (size_t i = 0; i < 5; ++i) CHECK(bigger[i].id == pool[i].id);
}

TEST_CASE("ring lab: balance and moved_fraction on hand-made assignments") {
  const std::vector<uint16_t> a = {0, 0, 1, 2};  // counts 2,1,1 over mean 4/3
  CHECK(balance(a, 3) == doctest::Approx(1.5));
  CHECK(share_of(a, 0) == doctest::Approx(0.5));
  const auto pool = lab_backends(3);
  // The same backends in another order: indices differ, identities do not.
  const std::vector<lb::SelectorBackend> swapped = {pool[2], pool[1], pool[0]};
  const std::vector<uint16_t> b = {2, 2, 1, 1};  // kupo-1, kupo-1, kupo-2, kupo-2
  CHECK(moved_fraction(a, pool, b, swapped) == doctest::Approx(0.25));
}

TEST_CASE("ring lab: rendezvous moves exactly the removed backend's keys") {
  // Thaler & Ravishankar: scores depend only on (key, backend), so removing kupo-n moves
  // exactly the keys it held and adding kupo-(n+1) moves exactly the keys it wins.
  for (size_t n : {3, 10}) {
    const RingRow r = measure_ring(lb::SelectorKind::rendezvous, n, 50'000, false, 1.25, 1);
    CHECK(r.moved_remove == r.removed_share);
    CHECK(r.moved_add == r.added_share);
    CHECK(r.moved_remove == doctest::Approx(1.0 / n).epsilon(0.1));
    CHECK(r.ideal_remove == doctest::Approx(1.0 / n));
    CHECK(r.ideal_add == doctest::Approx(1.0 / (n + 1)));
  }
}

TEST_CASE("ring lab: balance under 1.1 at n = 10 over 100k keys") {
  for (lb::SelectorKind kind : {lb::SelectorKind::rendezvous, lb::SelectorKind::maglev}) {
    const RingRow r = measure_ring(kind, 10, 100'000, false, 1.25, 1);
    CHECK(r.balance >= 1.0);
    CHECK(r.balance < 1.1);
    // Maglev moves the removed backend's slots plus a little more (Eisenbud et al. §3.4).
    CHECK(r.moved_remove >= r.removed_share);
    CHECK(r.moved_remove < r.removed_share + 0.05);
    CHECK(r.ns_per_lookup > 0);
  }
}

TEST_CASE("ring lab: bounded loads cap max/mean at c (Mirrokni et al.)") {
  // Few keys per backend: plain hashing is lumpy (max/mean well above c), the bound is not.
  // Each accepted key fits under ceil(c (L + 1) / n), so max <= ceil(c K / n) and
  // max/mean <= c + n / K.
  const size_t n = 64, keys = 2000;
  const double c = 1.25;
  for (lb::SelectorKind kind : {lb::SelectorKind::rendezvous, lb::SelectorKind::maglev}) {
    const auto pool = lab_backends(n);
    const auto sel = lb::make_selector(kind, pool);
    const auto plain = assign_first(*sel, keys);
    const auto bounded = assign_bounded(*sel, keys, c);
    CHECK(balance(plain, n) > c);
    CHECK(balance(bounded, n) <= c + static_cast<double>(n) / keys + 1e-9);
    const RingRow r = measure_ring(kind, n, keys, true, c, 1);
    CHECK(r.bounded);
    CHECK(r.balance == doctest::Approx(balance(bounded, n)));
    // Removing a backend moves at least its own keys.
    CHECK(r.moved_remove >= r.removed_share);
  }
}

TEST_CASE("ring lab: JSON rows carry every field") {
  const RingRow r = measure_ring(lb::SelectorKind::maglev, 5, 1000, true, 1.25, 1);
  const std::string j = ring_row_json(r);
  for (const char* f :
       {"\"selector\":\"maglev\"", "\"n\":5", "\"bounded\":true", "\"balance_factor\":1.250",
        "\"keys\":1000",
        "\"balance\":", "\"removed_share\":", "\"moved_remove\":", "\"ideal_remove\":0.200000",
        "\"added_share\":", "\"moved_add\":", "\"ideal_add\":0.166667", "\"ns_per_lookup\":"})
    CHECK_MESSAGE(j.find(f) != std::string::npos, f);
  const std::vector<RingRow> rows = {r, r};
  const std::string all = ring_rows_json(rows);
  CHECK(all.rfind("{\"rows\":[{", 0) == 0);
  CHECK(all.substr(all.size() - 3) == "}]}");
  const std::string table = ring_table(rows);
  CHECK(table.find("max/mean") != std::string::npos);
  CHECK(table.find("c=1.25") != std::string::npos);
}

TEST_CASE("ring lab: bounded rows measure lb::place(), the proxy's placement") {
  // The lab keeps no copy of the placement: its assignment is place()'s, key by key.
  const size_t n = 7, keys = 5000;
  const auto pool = lab_backends(n);
  const auto sel = lb::make_selector(lb::SelectorKind::rendezvous, pool);
  const auto lab = assign_bounded(*sel, keys, 1.25);
  std::vector<lb::Candidate> cands(n);
  for (size_t i = 0; i < n; ++i) cands[i].ref = static_cast<lb::BackendRef>(i);
  const lb::PoolView view{cands, sel.get(), 1.25, 0};
  REQUIRE(lab.size() == keys);
  size_t same = 0;
  for (size_t i = 0; i < keys; ++i) {
    lb::PlacementRequest req;
    req.hash = lab_key(i);
    const lb::Decision d = lb::place(view, req);
    REQUIRE(d.kind == lb::Placement::new_user);
    same += d.index == lab[i];
    ++cands[lab[i]].pinned;
  }
  CHECK(same == keys);
}
