#include <doctest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lb/core/rendezvous.h"
#include "lb/core/selector.h"
#include "lb/core/session_key.h"
#include "tests/lb/core/selector_fixtures.h"

using namespace lb;

namespace {

using namespace selector_test;

}  // namespace

TEST_CASE("rendezvous: golden vectors") {
  // Regression vectors, computed once from this implementation and hard-coded: they fail
  // if the hash, the (0,1) mapping or the score formula changes by accident. Such a change
  // would re-pin every user after an upgrade. Update them only on purpose.
  std::vector<SelectorBackend> b = pool("kupo-", 5);
  b[1].weight = 2;  // kupo-2, as in DESIGN.md's example config
  const RendezvousSelector s(b);
  struct Golden {
    uint64_t key;
    std::array<uint16_t, 5> ranking;
  };
  const Golden golden[] = {
      {0x0000000000000000ULL, {{1, 4, 3, 2, 0}}}, {0x0000000000000001ULL, {{1, 2, 0, 4, 3}}},
      {0x000000000000002aULL, {{3, 4, 1, 0, 2}}}, {0x00000000deadbeefULL, {{4, 0, 2, 1, 3}}},
      {0x0123456789abcdefULL, {{3, 4, 0, 2, 1}}}, {0x9e3779b97f4a7c15ULL, {{1, 2, 0, 4, 3}}},
      {0xfedcba9876543210ULL, {{4, 1, 0, 2, 3}}}, {0xffffffffffffffffULL, {{1, 2, 3, 4, 0}}},
  };
  for (const Golden& g : golden) {
    std::array<uint16_t, 5> out{};
    CHECK(s.rank(g.key, out) == 5);
    CHECK(out == g.ranking);
  }
  CHECK(rendezvous_score(1, name_hash("kupo-1"), 1) ==
        doctest::Approx(2.2096634529861028).epsilon(1e-12));
}

TEST_CASE("rendezvous: rank is distinct, sized min(n, out) and deterministic") {
  for (int n : {1, 2, 5, 64, 65, 200}) {
    const auto b = pool("b", n);
    const RendezvousSelector s(b);
    CHECK(s.size() == static_cast<size_t>(n));
    for (size_t want : {size_t{0}, size_t{1}, size_t{3}, size_t(n), size_t(n) + 3}) {
      for (uint64_t k = 0; k < 20; ++k) {
        std::vector<uint16_t> out(want, 0xFFFF), again(want, 0xFFFF);
        const size_t got = s.rank(mix_key(k), out);
        REQUIRE(got == std::min<size_t>(want, n));
        CHECK(s.rank(mix_key(k), again) == got);
        CHECK(out == again);
        std::vector<uint16_t> sorted(out.begin(), out.begin() + got);
        std::sort(sorted.begin(), sorted.end());
        CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
        for (uint16_t i : sorted) CHECK(i < n);
        // The ranking is the descending score order, even past the 64-entry pass.
        for (size_t j = 1; j < got; ++j)
          CHECK(rendezvous_score(mix_key(k), b[out[j - 1]].id, 1) >=
                rendezvous_score(mix_key(k), b[out[j]].id, 1));
      }
    }
  }
}

TEST_CASE("rendezvous: ranking does not depend on the construction order") {
  auto b = pool("kupo-", 10);
  const RendezvousSelector s(b);
  auto r = b;
  std::reverse(r.begin(), r.end());
  const RendezvousSelector rs(r);
  for (uint64_t k = 0; k < 1000; ++k) {
    std::array<uint16_t, 10> x{}, y{};
    s.rank(mix_key(k), x);
    rs.rank(mix_key(k), y);
    for (size_t j = 0; j < 10; ++j) CHECK(b[x[j]].id == r[y[j]].id);
  }
}

TEST_CASE("rendezvous: removing a backend moves exactly its keys") {
  for (int n : {5, 10}) {
    const auto b = pool("kupo-", n);
    const auto before = assign(RendezvousSelector(b), b);
    for (int gone = 0; gone < n; ++gone) {
      auto less = b;
      less.erase(less.begin() + gone);
      const auto after = assign(RendezvousSelector(less), less);
      int moved_own = 0, moved_other = 0;
      for (int k = 0; k < kKeys; ++k) {
        if (before[k] == b[gone].id)
          ++moved_own;
        else if (after[k] != before[k])
          ++moved_other;
      }
      CHECK(moved_other == 0);
      CHECK(moved_own > 0);
    }
  }
}

TEST_CASE("rendezvous: adding a backend moves about 1/(n+1) of keys, all onto it") {
  for (int n : {5, 10}) {
    auto b = pool("kupo-", n);
    const auto before = assign(RendezvousSelector(b), b);
    b.push_back({name_hash("kupo-new"), 1});
    const auto after = assign(RendezvousSelector(b), b);
    int moved = 0, moved_elsewhere = 0;
    for (int k = 0; k < kKeys; ++k) {
      if (after[k] == before[k]) continue;
      ++moved;
      if (after[k] != b.back().id) ++moved_elsewhere;
    }
    const double fraction = static_cast<double>(moved) / kKeys;
    MESSAGE("n=" << n << " add: moved " << fraction << " (ideal " << 1.0 / (n + 1) << ")");
    CHECK(moved_elsewhere == 0);
    CHECK(fraction == doctest::Approx(1.0 / (n + 1)).epsilon(0.05));
  }
}

TEST_CASE("rendezvous: balance and weights") {
  auto b = pool("kupo-", 10);
  {
    const RendezvousSelector s(b);
    std::array<int, 10> count{};
    for (int k = 0; k < kKeys; ++k) ++count.at(first(s, mix_key(k)));
    const double max_over_mean = *std::max_element(count.begin(), count.end()) / (kKeys / 10.0);
    MESSAGE("equal weights: max/mean " << max_over_mean);
    CHECK(max_over_mean < 1.1);
  }
  {
    b[3].weight = 2;
    const RendezvousSelector s(b);
    std::array<int, 10> count{};
    for (int k = 0; k < kKeys; ++k) ++count.at(first(s, mix_key(k)));
    double light = 0;
    for (int i = 0; i < 10; ++i)
      if (i != 3) light += count[i] / 9.0;
    MESSAGE("weight 2 vs 1: ratio " << count[3] / light);
    CHECK(count[3] / light == doctest::Approx(2.0).epsilon(0.1));
  }
}

TEST_CASE("make_selector builds the requested kind") {
  const auto b = pool("kupo-", 3);
  const auto r = make_selector(SelectorKind::rendezvous, b);
  CHECK(dynamic_cast<const RendezvousSelector*>(r.get()) != nullptr);
  CHECK(r->size() == 3);
  const auto empty = make_selector(SelectorKind::rendezvous, {});
  uint16_t out[4];
  CHECK(empty->rank(1, out) == 0);
}
