#pragma once
// Placement (DESIGN.md "Behaviour"): which backend of a pool serves a request, given the
// user's session entry. A known user stays on its pin unless that backend is down or gone;
// a new or moved user is placed by the pool's selector with bounded loads over the
// backends that take new users, moved users preferring a tip at or past the last slot they
// saw, and backends in slow start accepted for a growing share of newcomers. Pure: the
// caller gathers the candidates' live facts and injects the time.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "lb/core/backend_ref.h"
#include "lb/core/backend_state.h"
#include "lb/core/selector.h"

namespace lb {

// Why a user moved (DESIGN.md "Move reasons"). lag, fork and stale are set by chain-aware
// health on a backend whose pinned users must move on their next request (BackendStats::
// evict); regression is a backend that answered with a checkpoint older than the user saw.
enum class MoveReason : uint8_t { none, down, removed, admin, lag, fork, stale, regression };
const char* move_reason_name(MoveReason r);

// One backend of the pool as the balancer sees it, indexed like the selector's list.
struct Candidate {
  BackendRef ref = 0;
  BackendState state = BackendState::up;
  bool reachable = true;       // has an address (resolved)
  bool admin = false;          // its state is an operator's override
  uint32_t weight = 1;         // configured weight (>= 1)
  uint64_t pinned = 0;         // sessions pinned to it now
  uint64_t tip_slot = 0;       // newest chain slot known from it; 0 = unknown
  uint64_t ramp_start_ms = 0;  // slow start began here (came up, or was added); 0 = none
  // Set by chain-aware health (BackendStats::evict): not none = its pinned users move on
  // their next request, for this reason (lag, fork, stale); it takes no moved users.
  MoveReason evict = MoveReason::none;
};

struct PoolView {
  std::span<const Candidate> backends;
  const Selector* selector = nullptr;  // built over the same list
  double balance_factor = 1.25;        // bounded loads; <= 0 = off
  uint64_t slow_start_ms = 0;          // 0 = no ramp
};

// The backends that already failed this request: a failover never goes back to any of
// them (health may not have marked them down yet). A request fails over a few times at
// most (lb/core/retry_policy), so a few slots are enough; implicit from one ref.
struct ExcludedBackends {
  ExcludedBackends(BackendRef r = kNoBackend) { add(r); }  // NOLINT(google-explicit-constructor)
  void add(BackendRef r) {
    if (r != kNoBackend && n < refs.size() && !contains(r)) refs[n++] = r;
  }
  bool contains(BackendRef r) const {
    for (uint8_t i = 0; i < n; ++i)
      if (refs[i] == r) return true;
    return false;
  }
  std::array<BackendRef, 4> refs{};
  uint8_t n = 0;
};

// What the caller knows of the user and the request.
struct PlacementRequest {
  uint64_t hash = 0;                  // selector key of the user (or of a keyless request)
  bool has_pin = false;               // the session table knows this user
  BackendRef pinned_to = kNoBackend;  // valid when has_pin
  uint64_t last_slot = 0;             // newest slot the user has seen (0 = unknown)
  ExcludedBackends exclude;           // failed this request already: never chosen again
  // Why a pin among `exclude` cannot keep its user: down (it failed), or regression (it
  // answered with a checkpoint older than the user's last slot).
  MoveReason excluded_reason = MoveReason::down;
  // Only backends whose tip is at or past last_slot may take a moved user (a resend after
  // a regression: one further behind would show the same older answer).
  bool require_slot = false;
  uint64_t now_ms = 0;
};

enum class Placement : uint8_t {
  pinned,    // stays on its pin
  new_user,  // no pin (or an expired one): placed and to be pinned
  moved,     // its pin's backend is down, gone or failed: placed elsewhere, re-pinned
  none,      // nothing can take it
};

struct Decision {
  Placement kind = Placement::none;
  size_t index = 0;  // into PoolView::backends, when kind != none
  MoveReason reason = MoveReason::none;
  uint64_t min_slot = 0;  // the chosen backend should be at or past this slot
};

// The slow-start share (HAProxy "slowstart", Envoy slow start): 0.1 at ramp start rising
// linearly to 1.0 after window_ms; 1.0 with no ramp.
double slow_start_factor(uint64_t now_ms, uint64_t ramp_start_ms, uint64_t window_ms);

// Decides where the request goes. Never allocates on the steady path.
Decision place(const PoolView& pool, const PlacementRequest& req);

// place()'s first rule alone: the pinned decision when the user stays on its pin (it reads
// only state, reachability and refs), nullopt when it must be placed. Lets the caller skip
// gathering every backend's load on the common path, a returning user.
std::optional<Decision> keep_pin(std::span<const Candidate> backends, const PlacementRequest& req);

}  // namespace lb
