#include <doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "lb/admin/traffic_sampler.h"

namespace {

using lb::net::BackendStats;

struct Backend {
  lb::BackendRef ref;
  std::shared_ptr<BackendStats> stats;
};

// A snapshot holding only what the sampler reads: pool names, backend refs and counters.
lb::net::Runtime runtime(const std::vector<std::pair<std::string, std::vector<Backend>>>& pools) {
  lb::net::Runtime rt;
  for (const auto& [name, backends] : pools) {
    lb::net::RuntimePool p;
    p.name = name;
    for (const Backend& b : backends) {
      lb::net::RuntimeBackend rb;
      rb.name = "b" + std::to_string(b.ref);
      rb.ref = b.ref;
      rb.stats = b.stats;
      p.backends.push_back(std::move(rb));
    }
    rt.pools.push_back(std::move(p));
  }
  return rt;
}

// n responses with this status, each taking us microseconds, as a worker records them.
void answer(BackendStats& s, int status, uint64_t us, int n) {
  for (int i = 0; i < n; ++i) {
    s.local().count(status);
    s.local().observe(us);
  }
}

}  // namespace

TEST_CASE("traffic sampler: per-backend windows and pool history from the summed counters") {
  auto fast = std::make_shared<BackendStats>();
  auto busy = std::make_shared<BackendStats>();
  answer(*fast, 200, 1000, 500);  // before the first sample: not a burst
  lb::admin::TrafficSampler s;
  lb::net::Runtime rt = runtime({{"kupo", {{1, fast}, {2, busy}}}});
  CHECK_FALSE(s.backend(*fast, 0).has_value());
  s.sample(rt, 0);
  for (uint64_t t = 1; t <= 10; ++t) {
    answer(*fast, 200, 3000, 10);  // 10/s at 3 ms
    answer(*busy, 200, 40000, 2);  // 4/s at 40 ms, half of them 503
    answer(*busy, 503, 40000, 2);
    s.sample(rt, t * 1000);
  }
  auto f = s.backend(*fast, 10'000);
  REQUIRE(f.has_value());
  CHECK(f->rps == doctest::Approx(10.0));
  CHECK(f->rate_503 == 0);
  REQUIRE(f->p99_ms.has_value());
  CHECK(*f->p99_ms > 2.5);  // the (2.5, 5] ms bucket
  CHECK(*f->p99_ms <= 5);
  auto g = s.backend(*busy, 10'000);
  REQUIRE(g.has_value());
  CHECK(g->rps == doctest::Approx(4.0));
  CHECK(g->rate_503 == doctest::Approx(0.5));
  CHECK(*g->p99_ms > 25);  // the (25, 50] ms bucket
  CHECK(*g->p99_ms <= 50);
  auto h = s.history("kupo");
  REQUIRE(h.size() == 2);
  CHECK(h[1].rps == doctest::Approx(14.0));
  CHECK(h[1].rate_503 == doctest::Approx(10.0 / 70));
  CHECK(*h[1].p99_ms > 25);  // from the summed buckets: the slow backend's tail

  // busy leaves the config: forgotten. It comes back with fresh (lower) counters: a new
  // baseline, no negative rate, then its new traffic.
  lb::net::Runtime without = runtime({{"kupo", {{1, fast}}}});
  s.sample(without, 11'000);
  CHECK_FALSE(s.backend(*busy, 11'000).has_value());
  auto fresh = std::make_shared<BackendStats>();
  answer(*fresh, 200, 1000, 3);
  lb::net::Runtime back = runtime({{"kupo", {{1, fast}, {2, fresh}}}});
  s.sample(back, 12'000);
  CHECK(s.backend(*fresh, 12'000)->rps == 0);
  answer(*fresh, 200, 1000, 6);
  s.sample(back, 13'000);
  CHECK(s.backend(*fresh, 13'000)->rps == doctest::Approx(6.0));

  // A pool that goes away takes its history with it.
  s.sample(runtime({}), 14'000);
  CHECK(s.history("kupo").empty());
  CHECK_FALSE(s.backend(*fast, 14'000).has_value());
}

TEST_CASE("traffic sampler: backends past the registry's capacity share a ref, not a window") {
  // Registry::backend() hands ref kMaxBackends to every name past its capacity.
  auto a = std::make_shared<BackendStats>();
  auto b = std::make_shared<BackendStats>();
  lb::admin::TrafficSampler s;
  lb::net::Runtime rt = runtime({{"kupo", {{lb::kMaxBackends, a}, {lb::kMaxBackends, b}}}});
  s.sample(rt, 0);
  answer(*a, 200, 1000, 30);
  answer(*b, 503, 1000, 5);
  s.sample(rt, 1000);
  REQUIRE(s.backend(*a, 1000).has_value());
  REQUIRE(s.backend(*b, 1000).has_value());
  CHECK(s.backend(*a, 1000)->rps == doctest::Approx(30.0));
  CHECK(s.backend(*a, 1000)->rate_503 == 0);
  CHECK(s.backend(*b, 1000)->rps == doctest::Approx(5.0));
  CHECK(s.backend(*b, 1000)->rate_503 == 1);
  REQUIRE(s.history("kupo").empty());  // no 5 s step closed yet
}

TEST_CASE("traffic sampler: bounds in ms follow the histogram's microsecond bounds") {
  auto b = lb::admin::latency_bounds_ms();
  REQUIRE(b.size() == lb::net::kLatencyBucketsUs.size());
  for (size_t i = 0; i < b.size(); ++i)
    CHECK(b[i] * 1000 == doctest::Approx(static_cast<double>(lb::net::kLatencyBucketsUs[i])));
  CHECK(b.front() == doctest::Approx(0.1));
}
