// The load generator's latency histogram against exact percentiles of known data.
#include <doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "bench/hdr_histogram.h"

namespace {

// The exact value at percentile p with the histogram's rank rule: round(p/100 * n), at
// least 1, counted from the smallest value.
uint64_t exact_percentile(std::vector<uint64_t> v, double p) {
  std::sort(v.begin(), v.end());
  uint64_t rank = uint64_t(p / 100.0 * double(v.size()) + 0.5);
  rank = std::clamp<uint64_t>(rank, 1, v.size());
  return v[rank - 1];
}

void check_accuracy(const std::vector<uint64_t>& values) {
  bench::HdrHistogram h;
  for (uint64_t v : values) h.record(v);
  CHECK(h.count() == values.size());
  CHECK(h.max() == *std::max_element(values.begin(), values.end()));
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double exact = double(exact_percentile(values, p));
    const double got = double(h.percentile(p));
    CAPTURE(p);
    CAPTURE(exact);
    CAPTURE(got);
    // 3 significant digits: within 0.1% of the exact value (never below it).
    CHECK(got >= exact);
    CHECK(std::abs(got - exact) / exact <= 0.001);
  }
}

}  // namespace

TEST_CASE("hdr histogram: uniform 1..1e6 within 0.1%") {
  std::vector<uint64_t> v;
  for (uint64_t i = 1; i <= 1'000'000; ++i) v.push_back(i);
  check_accuracy(v);
  bench::HdrHistogram h;
  for (uint64_t x : v) h.record(x);
  CHECK(h.min() == 1);
  CHECK(h.mean() == doctest::Approx(500000.5));
}

TEST_CASE("hdr histogram: exponential-ish data and huge outliers within 0.1%") {
  std::mt19937_64 rng(42);
  std::exponential_distribution<double> exp(1.0 / 800.0);  // mean 800 µs
  std::vector<uint64_t> v;
  for (int i = 0; i < 200'000; ++i) v.push_back(1 + uint64_t(exp(rng)));
  check_accuracy(v);
  // A few stalls of seconds to an hour: the max stays exact, the tail stays accurate.
  for (uint64_t big : {2'500'000ULL, 9'999'999ULL, 123'456'789ULL, 3'599'999'999ULL})
    for (int i = 0; i < 100; ++i) v.push_back(big + uint64_t(i));
  check_accuracy(v);
}

TEST_CASE("hdr histogram: exact at small values, values above the range keep the max") {
  bench::HdrHistogram h;
  for (uint64_t i = 0; i < 2048; ++i) h.record(i);  // unit resolution below 2048
  for (uint64_t i = 0; i < 2048; ++i) CHECK(bench::HdrHistogram::highest_equivalent(i) == i);
  h.record(10'000'000'000ULL);  // beyond an hour: counted at the top, max exact
  CHECK(h.max() == 10'000'000'000ULL);
  CHECK(h.percentile(100) == 10'000'000'000ULL);
}

TEST_CASE("hdr histogram: merge equals recording everything in one") {
  bench::HdrHistogram a, b, all;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 50'000; ++i) {
    uint64_t x = 1 + rng() % 5'000'000;
    (i % 3 ? a : b).record(x);
    all.record(x);
  }
  a.merge(b);
  CHECK(a.count() == all.count());
  CHECK(a.max() == all.max());
  CHECK(a.min() == all.min());
  CHECK(a.mean() == doctest::Approx(all.mean()));
  for (double p : {0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0})
    CHECK(a.percentile(p) == all.percentile(p));
}

TEST_CASE("hdr histogram: fixed memory") {
  // 23 half-buckets of 1024 counts cover 1 µs .. 1 h at 3 digits: ~188 KB, whatever the count.
  CHECK(bench::HdrHistogram::kCountsLen == 23 * 1024);
  CHECK(bench::HdrHistogram::memory_bytes() < 200'000);
  bench::HdrHistogram h;
  const size_t before = h.memory_bytes();
  for (uint64_t i = 0; i < 3'000'000; ++i) h.record(i * 1201);
  CHECK(h.memory_bytes() == before);
  CHECK(sizeof(h) <= 64);
  bench::HdrHistogram empty;
  CHECK(empty.percentile(99) == 0);
  CHECK(empty.max() == 0);
}

// The load generator's other piece of arithmetic: its CIP-19 addresses must decode with
// corral's own bech32 decoder and keep one stake credential per user.
#include "bench/load_client.h"
#include "lb/core/cip19.h"

TEST_CASE("load: generated base addresses are valid bech32, one stake credential per user") {
  char a[bench::kAddressWidth], b[bench::kAddressWidth], c[bench::kAddressWidth];
  bench::format_base_address(7, 1, a);
  bench::format_base_address(7, 2, b);
  bench::format_base_address(8, 3, c);
  const std::string sa(a, sizeof a), sb(b, sizeof b), sc(c, sizeof c);
  CHECK(sa.rfind("addr1", 0) == 0);
  auto d = lb::bech32_decode(sa);
  REQUIRE(d.has_value());
  CHECK(d->hrp == "addr");
  REQUIRE(d->data.size() == 57);
  CHECK(d->data[0] == 0x01);
  CHECK(sa != sb);  // a new payment part on every request
  CHECK(lb::stake_key_material(sa) == lb::stake_key_material(sb));
  CHECK(lb::stake_key_material(sa) != lb::stake_key_material(sc));
  char k[bench::kUserKeyWidth];
  bench::format_user_key(42, k);
  CHECK(std::string(k, sizeof k) == "user-00000042");
}
