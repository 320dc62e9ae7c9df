#include <doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "lb/core/client_limiter.h"

namespace {

using lb::ClientLimit;
using lb::ClientLimiter;
using lb::KeySource;
using lb::make_session_key;
using lb::SessionKey;

SessionKey user(const std::string& s) { return make_session_key(KeySource::path, s); }
SessionKey ip(const std::string& s) { return make_session_key(KeySource::client_ip, s); }

// How many of n requests at one instant pass.
int passes(ClientLimiter& l, uint64_t route, SessionKey k, SessionKey a, const ClientLimit& lim,
           uint64_t now, int n) {
  int ok = 0;
  for (int i = 0; i < n; ++i) ok += l.admit(route, k, a, lim, now).allowed ? 1 : 0;
  return ok;
}

}  // namespace

TEST_CASE("client limiter: a burst, then the rate; another key is untouched") {
  ClientLimiter l;
  ClientLimit lim{5, 10, 0};
  CHECK(passes(l, 1, user("alice"), ip("1"), lim, 1000, 40) == 10);
  auto v = l.admit(1, user("alice"), ip("1"), lim, 1000);
  CHECK_FALSE(v.allowed);
  CHECK_FALSE(v.by_ip);
  CHECK(v.retry_after_s == 1);  // one token back in 200 ms, rounded up to a second
  // Another key from the same IP has its own bucket (no per-IP cap configured).
  CHECK(passes(l, 1, user("bob"), ip("1"), lim, 1000, 40) == 10);
  // 1 s later alice has 5 tokens back, not more.
  CHECK(passes(l, 1, user("alice"), ip("1"), lim, 2000, 40) == 5);
  // A long silence refills to the burst, never beyond.
  CHECK(passes(l, 1, user("alice"), ip("1"), lim, 100'000, 40) == 10);
}

TEST_CASE("client limiter: routes have separate buckets") {
  ClientLimiter l;
  ClientLimit lim{1, 2, 0};
  CHECK(passes(l, 1, user("a"), ip("1"), lim, 0, 5) == 2);
  CHECK(passes(l, 2, user("a"), ip("1"), lim, 0, 5) == 2);
}

TEST_CASE("client limiter: per_ip_rps caps keys rotated from one IP") {
  ClientLimiter l;
  ClientLimit lim{1, 2, 3};  // each key 2 at once; each IP max(2, 3) = 3 at once
  int ok = 0;
  for (int i = 0; i < 20; ++i)
    ok += l.admit(7, user("t" + std::to_string(i)), ip("9"), lim, 0).allowed;
  CHECK(ok == 3);
  auto v = l.admit(7, user("fresh"), ip("9"), lim, 0);
  CHECK_FALSE(v.allowed);
  CHECK(v.by_ip);
  CHECK(v.retry_after_s == 1);
  // The fresh key was not charged by the refusal: once the IP refills it has its burst.
  CHECK(passes(l, 7, user("fresh"), ip("9"), lim, 1000, 1) == 1);  // IP: 3 tokens back
  CHECK(passes(l, 7, user("fresh"), ip("9"), lim, 1000, 1) == 1);
  auto k = l.admit(7, user("fresh"), ip("9"), lim, 1000);
  CHECK_FALSE(k.allowed);
  CHECK_FALSE(k.by_ip);  // its own bucket of 2 is what stops it now
  // Another IP is unaffected.
  CHECK(passes(l, 7, user("t0"), ip("8"), lim, 1000, 5) >= 1);
}

TEST_CASE("client limiter: a key refused by its own bucket spends no IP token") {
  ClientLimiter l;
  ClientLimit lim{1, 1, 2};
  CHECK(passes(l, 3, user("a"), ip("1"), lim, 0, 10) == 1);  // a: 1; IP: 1 of 2 left
  CHECK(passes(l, 3, user("b"), ip("1"), lim, 0, 1) == 1);   // the IP's second token
}

TEST_CASE("client limiter: Retry-After follows the refill rate") {
  ClientLimiter l;
  ClientLimit lim{0.25, 1, 0};  // one token every 4 s
  CHECK(l.admit(1, user("a"), ip("1"), lim, 0).allowed);
  CHECK(l.admit(1, user("a"), ip("1"), lim, 0).retry_after_s == 4);
  CHECK(l.admit(1, user("a"), ip("1"), lim, 3000).retry_after_s == 1);
  CHECK(l.admit(1, user("a"), ip("1"), lim, 4000).allowed);
}

TEST_CASE("client limiter: disabled limit admits everything and stores nothing") {
  ClientLimiter l;
  CHECK(passes(l, 1, user("a"), ip("1"), ClientLimit{}, 0, 100) == 100);
  CHECK(l.size() == 0);
}

TEST_CASE("client limiter: memory is bounded; the coldest bucket is dropped") {
  ClientLimiter l(64, 4);  // 16 per shard
  ClientLimit lim{1, 1, 0};
  for (int i = 0; i < 1000; ++i) l.admit(1, user("k" + std::to_string(i)), ip("1"), lim, 0);
  CHECK(l.size() == 64);
  CHECK(l.evicted() == 1000 - 64);
  // Every held key is still found (the index survived the backward-shift deletions): each
  // of the last keys is refused, as it spent its one token.
  int refused = 0;
  for (int i = 990; i < 1000; ++i)
    refused += l.admit(1, user("k" + std::to_string(i)), ip("1"), lim, 0).allowed ? 0 : 1;
  CHECK(refused == 10);
  // With the per-IP bucket too, a full shard never evicts the key touched just before.
  ClientLimiter tiny(2, 1);
  ClientLimit both{1, 1, 1};
  CHECK(tiny.admit(1, user("x"), ip("1"), both, 0).allowed);
  CHECK_FALSE(tiny.admit(1, user("y"), ip("1"), both, 0).allowed);  // the IP is empty
  CHECK(tiny.size() == 2);
}

TEST_CASE("client limiter: workers share one bucket") {
  ClientLimiter l;
  ClientLimit lim{1, 100, 0};
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 100; ++i) ok += l.admit(1, user("shared"), ip("1"), lim, 0).allowed;
    });
  for (auto& t : ts) t.join();
  CHECK(ok.load() == 100);
}
