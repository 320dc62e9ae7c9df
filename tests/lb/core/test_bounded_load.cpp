#include <doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lb/core/bounded_load.h"
#include "lb/core/rendezvous.h"
#include "lb/core/session_key.h"
#include "tests/lb/core/selector_fixtures.h"

using namespace lb;

namespace {

using selector_test::mix_key;

std::vector<SelectorBackend> pool(int n) {
  std::vector<SelectorBackend> b;
  for (int i = 1; i <= n; ++i) b.push_back({name_hash("kupo-" + std::to_string(i)), 1});
  return b;
}

// A badly skewed hash: `hot_percent` of the keys rank backend 0 first (the rest of their
// ranking is rendezvous order), the way a hot key range or a poor hash would.
class SkewedSelector final : public Selector {
 public:
  SkewedSelector(std::span<const SelectorBackend> b, int hot_percent)
      : inner_(b), hot_percent_(hot_percent) {}
  size_t size() const override { return inner_.size(); }
  size_t rank(uint64_t key, std::span<uint16_t> out) const override {
    const size_t got = inner_.rank(key, out);
    if (static_cast<int>(key % 100) < hot_percent_) {
      auto zero = std::find(out.begin(), out.begin() + got, uint16_t{0});
      if (zero != out.begin() + got) std::rotate(out.begin(), zero, zero + 1);
    }
    return got;
  }

 private:
  RendezvousSelector inner_;
  int hot_percent_;
};

struct Pool {
  std::vector<uint64_t> load;
  std::vector<uint32_t> weight;
  std::unique_ptr<bool[]> eligible;  // std::vector<bool> has no span
  size_t n;
  explicit Pool(size_t size) : load(size, 0), weight(size, 1), eligible(new bool[size]), n(size) {
    std::fill_n(eligible.get(), n, true);
  }
  LoadView view() const { return {load, weight, {eligible.get(), n}}; }
};

constexpr uint64_t kKeys = 100000;

uint64_t ceil_u(double x) { return static_cast<uint64_t>(std::ceil(x)); }

// Places kKeys new users one after another, updating loads; every choice must exist and
// be eligible (counted, then asserted once: doctest assertions are slow in a hot loop).
void place_all(const Selector& s, Pool& p, double c) {
  std::array<uint16_t, 64> ranked{};
  int bad = 0;
  for (uint64_t k = 0; k < kKeys; ++k) {
    const size_t got = s.rank(mix_key(k), ranked);
    const auto chosen = choose_bounded({ranked.data(), got}, p.view(), c);
    if (!chosen || *chosen >= p.n || !p.eligible[*chosen]) {
      ++bad;
      continue;
    }
    ++p.load[*chosen];
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("bounded: the bound is ceil(c * (L + 1) * w_i / W) and a backend takes while under") {
  Pool p(2);
  const uint16_t ranked[] = {0, 1};
  p.load = {1, 0};  // L = 1: bound ceil(1.25 * 2 / 2) = 2 > 1, backend 0 still fits
  CHECK(choose_bounded(ranked, p.view(), 1.25) == 0);
  p.load = {2, 0};  // L = 2: bound ceil(1.25 * 3 / 2) = 2, backend 0 is full
  CHECK(choose_bounded(ranked, p.view(), 1.25) == 1);
  p.weight = {3, 1};  // weighted: bound ceil(1.25 * 3 * 3 / 4) = 3 > 2
  CHECK(choose_bounded(ranked, p.view(), 1.25) == 0);
}

TEST_CASE("bounded: every eligible backend at its bound falls back to the first eligible") {
  Pool p(3);
  p.load = {5, 5, 5};
  p.eligible[0] = false;
  const uint16_t ranked[] = {0, 2, 1};
  // c = 0.1: bound ceil(0.1 * 11 * 1 / 2) = 1, both eligible backends are over it.
  CHECK(choose_bounded(ranked, p.view(), 0.1) == 2);
}

TEST_CASE("bounded: eligibility") {
  Pool p(4);
  const uint16_t ranked[] = {2, 0, 3, 1};
  CHECK(choose_bounded({}, p.view(), 1.25) == std::nullopt);
  std::fill_n(p.eligible.get(), 4, false);
  CHECK(choose_bounded(ranked, p.view(), 1.25) == std::nullopt);
  CHECK(choose_bounded(ranked, p.view(), 0) == std::nullopt);
  p.eligible[3] = true;
  p.load = {0, 0, 0, 1000};  // far over any bound, but the only one taking new users
  CHECK(choose_bounded(ranked, p.view(), 1.25) == 3);
  // An index past the view (a stale ranking) is skipped, never read.
  const uint16_t stale[] = {9, 3};
  CHECK(choose_bounded(stale, p.view(), 1.25) == 3);
}

TEST_CASE("bounded: c <= 0 is the plain first eligible choice") {
  const auto b = pool(10);
  const RendezvousSelector s(b);
  Pool p(10);
  p.eligible[4] = false;
  for (int k = 0; k < 2000; ++k) {
    std::array<uint16_t, 10> ranked{};
    s.rank(mix_key(k), ranked);
    const uint16_t expect = ranked[0] == 4 ? ranked[1] : ranked[0];
    p.load[k % 10] = static_cast<uint64_t>(k) * 7919 % 1000;  // arbitrary, ignored
    CHECK(choose_bounded(ranked, p.view(), 0) == expect);
    CHECK(choose_bounded(ranked, p.view(), -1) == expect);
  }
}

TEST_CASE("bounded: max load stays within ceil(c * mean) + 1 under a skewed hash") {
  const double c = 1.25;
  const auto b = pool(10);
  for (int hot : {0, 90, 100}) {
    const SkewedSelector s(b, hot);
    Pool p(10);
    place_all(s, p, c);
    const uint64_t max = *std::max_element(p.load.begin(), p.load.end());
    const double mean = kKeys / 10.0;
    MESSAGE("hot=" << hot << "%: max/mean " << static_cast<double>(max) / mean);
    CHECK(max <= ceil_u(c * mean) + 1);
    // Without the bound the skew shows: the hot backend takes most keys.
    if (hot == 90) {
      Pool q(10);
      place_all(s, q, 0);
      CHECK(q.load[0] > 9 * kKeys / 10);
    }
  }
}

TEST_CASE("bounded: ineligible backends get nothing, the rest stay bounded") {
  const double c = 1.25;
  const auto b = pool(10);
  const SkewedSelector s(b, 90);
  Pool p(10);
  p.eligible[0] = false;  // the hot one drains
  p.eligible[7] = false;
  place_all(s, p, c);
  CHECK(p.load[0] == 0);
  CHECK(p.load[7] == 0);
  const double mean = kKeys / 8.0;
  CHECK(*std::max_element(p.load.begin(), p.load.end()) <= ceil_u(c * mean) + 1);
}

TEST_CASE("bounded: weighted bounds scale with weight") {
  const double c = 1.25;
  const auto b = pool(10);
  const SkewedSelector s(b, 100);  // everyone wants backend 0 first
  Pool p(10);
  p.weight[0] = 2;  // W = 11
  place_all(s, p, c);
  const double share = static_cast<double>(kKeys) / 11;
  MESSAGE("weight-2 backend: load/share " << static_cast<double>(p.load[0]) / share);
  CHECK(p.load[0] <= ceil_u(c * 2 * share) + 1);
  CHECK(p.load[0] >= ceil_u(c * 2 * share) - 2);  // the hot backend fills up to its bound
  for (int i = 1; i < 10; ++i) CHECK(p.load[i] <= ceil_u(c * share) + 1);
}
