#include "lb/core/balancer.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "lb/core/bounded_load.h"
#include "lb/core/splitmix.h"

namespace lb {

namespace {

// The slow-start share at the very start of a ramp (HAProxy starts near 0; 10% keeps a
// returning backend warm enough to be seen working).
constexpr double kRampFloor = 0.1;
// Resolution of the per-key ramp test.
constexpr uint64_t kRampBuckets = 10000;

// Per-thread scratch arrays for one placement. They only grow (to the largest pool this
// thread has placed in), so the steady path does not allocate.
struct Scratch {
  std::vector<uint16_t> ranked;
  std::vector<uint64_t> load;
  std::vector<uint32_t> weight;
  std::vector<double> factor;
  std::unique_ptr<bool[]> eligible;  // std::vector<bool> is packed and has no span
  size_t eligible_cap = 0;

  void fit(size_t n, size_t rank_n) {
    if (ranked.size() < rank_n) ranked.resize(rank_n);
    if (load.size() < n) {
      load.resize(n);
      weight.resize(n);
      factor.resize(n);
    }
    if (eligible_cap < n) {
      eligible.reset(new bool[n]);
      eligible_cap = n;
    }
  }
};

// SplitMix64's finaliser (Steele, Lea, Flood, OOPSLA 2014) over (user hash, backend): a
// draw in [0, kRampBuckets) that is fixed per (user, backend), so a retry or a second
// corral instance decides the same way, and unrelated to the selector's own scores.
uint64_t ramp_draw(uint64_t hash, BackendRef ref) {
  return splitmix64(hash + kGoldenGamma * static_cast<uint64_t>(ref)) % kRampBuckets;
}

// Which candidates a pass of the placement considers, best pass first.
enum class Tier : uint8_t {
  caught_up,  // up, and its tip at or past the user's last slot
  up,         // up
  draining,   // only when nothing is up: serve rather than fail
};

// The state placement gives a candidate: a backend health evicts users from (lag, fork,
// stale) takes no new or moved users while anything else can, like a draining one.
BackendState placement_state(const Candidate& c) {
  if (c.evict != MoveReason::none && c.state == BackendState::up) return BackendState::draining;
  return c.state;
}

bool in_tier(const Candidate& c, Tier tier, const PlacementRequest& req, uint64_t min_slot) {
  if (!c.reachable || req.exclude.contains(c.ref)) return false;
  // A resend after a regression goes only where the user's slot is (or nowhere).
  if (req.require_slot && c.tip_slot < min_slot) return false;
  const BackendState state = placement_state(c);
  switch (tier) {
    case Tier::caught_up:
      return state == BackendState::up && c.tip_slot >= min_slot;
    case Tier::up:
      return state == BackendState::up;
    case Tier::draining:
      return state == BackendState::draining;
  }
  return false;
}

// Why the user's pin cannot be used, or none if it can. `i` is the pin's index in the
// pool, or n when its backend is no longer configured. An operator's override names
// itself; a backend this request excluded gives the request's reason; then health's
// eviction (a backend down on a fork moves its users for "fork", not "down").
MoveReason pin_unusable(std::span<const Candidate> backends, size_t i,
                        const PlacementRequest& req) {
  if (i == backends.size()) return MoveReason::removed;
  const Candidate& c = backends[i];
  if (c.state == BackendState::down && c.admin) return MoveReason::admin;
  if (req.exclude.contains(c.ref)) return req.excluded_reason;
  if (c.evict != MoveReason::none) return c.evict;
  if (c.state == BackendState::down) return MoveReason::down;
  // A backend that lost its address is down as far as this user is concerned; health
  // will say so for everyone shortly.
  if (!c.reachable) return MoveReason::down;
  return MoveReason::none;  // up or draining: draining keeps its pinned users
}

// Walks the tiers and returns the index of the chosen backend, or n. Candidates in slow
// start accept only a share f of the keys (deterministically per user), which is the ramp
// of their weight; the bounded loads use the configured weight, since scaling it by f as
// well would square the ramp and, for a backend back from ejection that kept its pinned
// users, put its bound under its load until late in the window (no newcomers, then a full
// share at once). A tier whose candidates all refuse the key for the ramp alone still
// places it, since slow start must never fail a request.
size_t choose(const PoolView& pool, const PlacementRequest& req, uint64_t min_slot) {
  const size_t n = pool.backends.size();
  if (n == 0) return n;
  static thread_local Scratch s;
  const size_t rank_n = pool.selector ? pool.selector->size() : n;
  s.fit(n, rank_n);

  size_t k = 0;
  if (pool.selector) {
    k = pool.selector->rank(req.hash, std::span<uint16_t>(s.ranked.data(), rank_n));
  } else {
    for (size_t i = 0; i < n; ++i) s.ranked[i] = static_cast<uint16_t>(i);  // list order
    k = n;
  }

  for (size_t i = 0; i < n; ++i) {
    const Candidate& c = pool.backends[i];
    s.factor[i] = pool.slow_start_ms
                      ? slow_start_factor(req.now_ms, c.ramp_start_ms, pool.slow_start_ms)
                      : 1.0;
    s.load[i] = c.pinned;
    s.weight[i] = std::max<uint32_t>(c.weight, 1);
  }

  const LoadView view{std::span<const uint64_t>(s.load.data(), n),
                      std::span<const uint32_t>(s.weight.data(), n),
                      std::span<const bool>(s.eligible.get(), n)};
  const std::span<const uint16_t> ranked(s.ranked.data(), k);
  for (Tier tier : {Tier::caught_up, Tier::up, Tier::draining}) {
    // The caught-up tier only matters for a user who has seen a slot.
    if (tier == Tier::caught_up && min_slot == 0) continue;
    bool any = false, refused = false;
    for (size_t i = 0; i < n; ++i) {
      const Candidate& c = pool.backends[i];
      bool ok = in_tier(c, tier, req, min_slot);
      any = any || ok;
      if (ok && s.factor[i] < 1.0 &&
          ramp_draw(req.hash, c.ref) >= static_cast<uint64_t>(s.factor[i] * kRampBuckets)) {
        ok = false;
        refused = true;
      }
      s.eligible[i] = ok;
    }
    if (!any) continue;
    if (std::optional<uint16_t> pick = choose_bounded(ranked, view, pool.balance_factor))
      if (*pick < n) return *pick;
    if (!refused) continue;
    // Every candidate of this tier refused the key for its ramp alone: better a ramping
    // backend of this tier than a worse tier (or none).
    for (size_t i = 0; i < n; ++i) s.eligible[i] = in_tier(pool.backends[i], tier, req, min_slot);
    if (std::optional<uint16_t> pick = choose_bounded(ranked, view, pool.balance_factor))
      if (*pick < n) return *pick;
  }
  return n;
}

}  // namespace

const char* move_reason_name(MoveReason r) {
  switch (r) {
    case MoveReason::down:
      return "down";
    case MoveReason::removed:
      return "removed";
    case MoveReason::admin:
      return "admin";
    case MoveReason::lag:
      return "lag";
    case MoveReason::fork:
      return "fork";
    case MoveReason::stale:
      return "stale";
    case MoveReason::regression:
      return "regression";
    case MoveReason::none:
      return "none";
  }
  return "none";
}

// Linear from kRampFloor at ramp_start_ms to 1 at ramp_start_ms + window_ms, as HAProxy's
// "slowstart" raises a server's effective weight after it comes back.
double slow_start_factor(uint64_t now_ms, uint64_t ramp_start_ms, uint64_t window_ms) {
  if (window_ms == 0 || ramp_start_ms == 0) return 1.0;
  if (now_ms <= ramp_start_ms) return kRampFloor;
  const uint64_t elapsed = now_ms - ramp_start_ms;
  if (elapsed >= window_ms) return 1.0;
  return kRampFloor +
         (1.0 - kRampFloor) * static_cast<double>(elapsed) / static_cast<double>(window_ms);
}

// DESIGN.md "Behaviour": a pinned user stays unless its backend is down, gone, just
// failed it, or evicted by chain-aware health (lag, fork, stale); then it moves, forward
// (min_slot = the last slot it saw). New and moved users go only to up backends that are
// not evicted (caught-up ones first for a moved user), and to draining or evicted ones
// only when nothing else can take them. A decision of kind none keeps the reason the pin
// was unusable.
std::optional<Decision> keep_pin(std::span<const Candidate> backends, const PlacementRequest& req) {
  if (!req.has_pin) return std::nullopt;
  size_t i = 0;
  while (i < backends.size() && backends[i].ref != req.pinned_to) ++i;
  if (pin_unusable(backends, i, req) != MoveReason::none) return std::nullopt;
  Decision d;
  d.kind = Placement::pinned;
  d.index = i;
  return d;
}

Decision place(const PoolView& pool, const PlacementRequest& req) {
  const size_t n = pool.backends.size();
  if (std::optional<Decision> stay = keep_pin(pool.backends, req)) return *stay;
  Decision d;
  if (req.has_pin) {
    size_t i = 0;
    while (i < n && pool.backends[i].ref != req.pinned_to) ++i;
    d.reason = pin_unusable(pool.backends, i, req);
    d.min_slot = req.last_slot;  // the user must not see the chain go backwards
  }
  const size_t chosen = choose(pool, req, d.min_slot);
  if (chosen == n) {
    d.kind = Placement::none;
    return d;
  }
  if (req.has_pin && pool.backends[chosen].ref == req.pinned_to) {
    // Evicted, but nothing else can take the user: it stays rather than "moves" in place.
    d.kind = Placement::pinned;
    d.index = chosen;
    d.reason = MoveReason::none;
    return d;
  }
  d.kind = req.has_pin ? Placement::moved : Placement::new_user;
  d.index = chosen;
  return d;
}

}  // namespace lb
