#include <doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "lb/core/pending_writes.h"

using lb::PendingWrite;
using lb::PendingWrites;

namespace {
PendingWrite w(std::string key, std::string expected, std::string value) {
  return PendingWrite{std::move(key), std::move(expected), std::move(value)};
}
std::vector<std::string> keys(const std::vector<PendingWrite>& v) {
  std::vector<std::string> out;
  for (const auto& x : v) out.push_back(x.key);
  return out;
}
}  // namespace

TEST_CASE("pending_writes: FIFO, take in batches") {
  PendingWrites q(10);
  for (int i = 0; i < 5; ++i) q.push(w("k" + std::to_string(i), "", "v" + std::to_string(i)));
  CHECK(q.size() == 5);
  auto a = q.take(2);
  CHECK(keys(a) == std::vector<std::string>{"k0", "k1"});
  CHECK(a[1].value == "v1");
  CHECK(q.size() == 3);
  auto b = q.take(100);
  CHECK(keys(b) == std::vector<std::string>{"k2", "k3", "k4"});
  CHECK(q.size() == 0);
  CHECK(q.take(4).empty());
  CHECK(q.dropped() == 0);
}

TEST_CASE("pending_writes: same key keeps its place, first expected, latest value") {
  PendingWrites q(10);
  q.push(w("a", "", "v1|x|1|none"));  // a claim while down
  q.push(w("b", "x", "v1|y|0|down"));
  q.push(w("a", "x", "v1|z|0|down"));   // then a move of the same user
  q.push(w("a", "z", "v1|q|0|admin"));  // and another
  CHECK(q.size() == 2);
  auto all = q.take(10);
  REQUIRE(all.size() == 2);
  CHECK(all[0] == w("a", "", "v1|q|0|admin"));  // still a claim, with the latest decision
  CHECK(all[1] == w("b", "x", "v1|y|0|down"));
}

TEST_CASE("pending_writes: contains follows push, take, restore and drops") {
  PendingWrites q(2);
  CHECK_FALSE(q.contains("a"));
  q.push(w("a", "x", "v1|y|0|down"));
  q.push(w("b", "", "v1|x|1|none"));
  CHECK(q.contains("a"));
  CHECK(q.contains("b"));
  auto batch = q.take(1);  // "a" leaves for a flush
  CHECK_FALSE(q.contains("a"));
  q.restore(batch);  // the flush could not send it
  CHECK(q.contains("a"));
  q.push(w("c", "", "v1|x|1|none"));  // over the bound: the oldest ("a") is dropped
  CHECK_FALSE(q.contains("a"));
  CHECK(q.contains("c"));
}

TEST_CASE("pending_writes: over max_pending the oldest is dropped and counted") {
  PendingWrites q(3);
  for (int i = 0; i < 7; ++i) q.push(w("k" + std::to_string(i), "", "v"));
  CHECK(q.size() == 3);
  CHECK(q.dropped() == 4);
  // Coalescing does not drop anything.
  q.push(w("k5", "", "v2"));
  CHECK(q.dropped() == 4);
  CHECK(keys(q.take(10)) == std::vector<std::string>{"k4", "k5", "k6"});
  // A key dropped earlier can be queued again, at the back.
  q.push(w("k0", "", "v"));
  CHECK(keys(q.take(10)) == std::vector<std::string>{"k0"});
}

TEST_CASE("pending_writes: restore puts a failed batch back first, in order") {
  PendingWrites q(10);
  for (std::string k : {"a", "b", "c", "d"}) q.push(w(k, "", "old-" + k));
  auto batch = q.take(2);  // a, b
  q.push(w("e", "", "e"));
  q.push(w("b", "m", "new-b"));  // b decided again while the batch was out
  q.restore(batch);
  auto all = q.take(10);
  CHECK(keys(all) == std::vector<std::string>{"a", "b", "c", "d", "e"});
  CHECK(all[0].value == "old-a");
  CHECK(all[1] == w("b", "", "new-b"));  // the store never saw the claim: still a claim
}

TEST_CASE("pending_writes: restore and shrinking respect the bound") {
  PendingWrites q(3);
  for (std::string k : {"a", "b", "c"}) q.push(w(k, "", k));
  auto batch = q.take(2);
  for (std::string k : {"d", "e"}) q.push(w(k, "", k));
  q.restore(batch);  // 5 queued for a bound of 3: the restored (oldest) go
  CHECK(q.size() == 3);
  CHECK(q.dropped() == 2);
  q.set_max_pending(1);
  CHECK(q.max_pending() == 1);
  CHECK(q.dropped() == 4);
  CHECK(keys(q.take(10)) == std::vector<std::string>{"e"});
  PendingWrites none(0);
  none.push(w("x", "", "x"));
  CHECK(none.size() == 0);
  CHECK(none.dropped() == 1);
}

TEST_CASE("pending_writes: concurrent pushes from workers lose nothing under the bound") {
  PendingWrites q(100000);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&q, t] {
      for (int i = 0; i < 2000; ++i)
        q.push(w(std::to_string(t) + ":" + std::to_string(i), "", "v"));
    });
  for (auto& th : ts) th.join();
  CHECK(q.size() == 8000);
  CHECK(q.dropped() == 0);
}
