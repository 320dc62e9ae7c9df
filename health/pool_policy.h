#pragma once
// The health policy of one pool (DESIGN.md "Health", "Rebalance new users only"), pure:
// time comes in as `now_ms`, probe answers and live-traffic events come in as calls, and
// every call returns what the published state did (Pingora's "did it flip"). It owns the
// record of each backend (its BackendHealth state machine, last probe, lag) and applies
// the rules that need the whole pool:
//  - a probe answer is read per pool kind (interpret_probe);
//  - a backend behind the pool's best tip, or stale, takes no new users: an `up` probe
//    is folded into `draining` (lag_level, over health/lag's verdict); a `draining` one
//    (Kupo/Ogmios 202: behind its own node) whose tip is level with the pool's best is
//    `up` (level_level): the pool is the yardstick, not the backend's node;
//  - a backend more than move_lag_slots behind, stale, or on a fork gets an eviction
//    reason (BackendRecord::evict): its pinned users move on their next request;
//  - fork rounds (health/fork_vote) mark a minority backend `down` with reason fork;
//  - 503 ejections never take more than max_percent of the pool (within_eject_budget);
//    response timeouts count as 503s, never as failures (a client chooses how slow its
//    query is, so it must not be able to mark a backend down);
//  - a backend that returns to `up` from `down` or from an ejection, or that a reload
//    adds, starts its slow-start ramp (ramp_starts); one at process start does not.
// The libuv shell (lb/net/health_monitor) runs timers and probes, feeds events in and
// stores the published states where the workers read them.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "health/backend_health.h"
#include "health/fork_vote.h"
#include "health/probe_result.h"
#include "lb/core/backend_ref.h"
#include "lb/core/balancer.h"

namespace health {

struct PoolParams {
  HealthParams backend;  // rise, fall, ejection times
  uint64_t max_lag_slots = 600;
  double stale_after_s = 120;
  uint32_t max_percent = 50;        // of the pool's backends that may be ejected at once
  uint64_t slow_start_ms = 30'000;  // 0 = no ramp
  uint64_t move_lag_slots = 1800;   // behind the best tip: pinned users move
  uint64_t fork_depth_slots = 60;   // fork checks look this far below the lowest tip
};

// The pool's health settings as configured.
PoolParams pool_params(const config::Pool& p);

// Reads one probe answer the way the pool's kind means it. status 0 means no HTTP
// answer, with `error` saying why; `expect_status` is the plain-HTTP kind's healthy code.
ProbeResult interpret_probe(config::PoolKind kind, int expect_status, int status,
                            std::string_view body, std::string_view error);

// The path probed for a pool: each Cardano kind has its own GET /health; plain HTTP
// pools name theirs.
std::string probe_path(const config::Pool& p);

// The level a probe reports once lag is folded in: lagging turns `up` into `draining`
// (keep its users, take no new ones); it never makes a worse level better.
BackendState lag_level(BackendState probe_level, bool lagging);

// A `draining` probe (202: behind its own node) from a backend whose tip is known and
// level with the pool's best (within max_lag_slots) reads as `up`; anything else is kept.
BackendState level_level(BackendState probe_level, bool tip_known, bool behind);

// Whether one more ejection keeps the ejected backends within max_percent of the pool
// (rounding down: 50% of 3 is 1, and a pool of one is never ejected below 100%).
bool within_eject_budget(size_t ejected_now, size_t pool_size, uint32_t max_percent);

// When a slow-start ramp begins: the published state becomes `up` from anything else
// while the backend is `returning` (it was down or ejected since it was last up), or
// straight from `down`. A backend that was only draining (lag, a 202, an operator's
// drain) keeps its users and comes back at full share.
bool ramp_starts(bool returning, BackendState before, BackendState after);

// Everything health knows of one backend.
struct BackendRecord {
  lb::BackendRef ref = 0;
  BackendHealth sm;
  ProbeResult last;
  bool probed = false;  // at least one probe answered
  bool lagging = false;
  uint64_t lag_slots = 0;   // behind the pool's best tip
  bool far_behind = false;  // more than move_lag_slots behind
  bool stale = false;
  std::optional<uint64_t> live_tip;  // from live traffic (X-Most-Recent-Checkpoint)
  ForkMark fork;                     // from probe rounds (Kupo /checkpoints, Ogmios tips)
  ForkMark live_fork;  // from live traffic's checkpoints (Kupo): marked and healed apart
  lb::MoveReason evict = lb::MoveReason::none;  // why pinned users must move; none = stay
  uint64_t probes_up = 0, probes_draining = 0, probes_down = 0;
  uint64_t probes_at_tip_vote = 0;  // probes answered when it last voted its tip (Ogmios)
  uint64_t transitions = 0;
  uint64_t ramp_start_ms = 0;  // slow start began here; 0 = never
  bool returning = false;      // down or ejected since it was last up

  bool forked() const { return fork.forked || live_fork.forked; }
  uint64_t probes() const { return probes_up + probes_draining + probes_down; }
};

// Where a fork round's ballots come from. Kupo probes ask every voter about one slot;
// tips (Ogmios) and live checkpoints (Kupo) come only from the members that hold the
// compared slot, so their winner must hold a majority of the whole pool's voting weight.
enum class ForkSource : uint8_t { probes, tips, live };

// What one event did to a backend's published state.
struct Change {
  BackendState before = BackendState::up;
  BackendState after = BackendState::up;
  bool ramp_started = false;  // ramp_start_ms was set to now
  std::string why;            // "reason: cause", set when the state changed
  bool changed() const { return before != after; }
};

class PoolHealth {
 public:
  explicit PoolHealth(PoolParams p = {});

  // Reload: the new settings apply to the next events of every member.
  void set_params(const PoolParams& p);
  const PoolParams& params() const { return p_; }

  // Makes `refs` the pool's members, in this order. Known members keep their records;
  // new ones start `up` and, when `ramp_new` (a reload added them), ramp from now_ms.
  void set_members(std::span<const lb::BackendRef> refs, bool ramp_new, uint64_t now_ms);

  size_t size() const { return members_.size(); }
  const BackendRecord& at(size_t i) const { return members_[i]; }
  std::optional<size_t> index_of(lb::BackendRef ref) const;

  // An active probe's answer for member i: counted, lag refolded over the pool, then
  // fed to i's state machine.
  Change on_probe(size_t i, ProbeResult r, uint64_t now_ms);
  // A live-traffic answer (503 streaks eject within the budget).
  Change on_response(size_t i, int status, uint64_t now_ms);
  // A live-traffic failure: refused, reset or connect timed out (toward down).
  Change on_passive_failure(size_t i, uint64_t now_ms);
  // A live request got no answer within timeouts.response: counted like a 503 (ejection
  // to draining within max_percent), never toward down.
  Change on_response_timeout(size_t i, uint64_t now_ms);
  // Time passing: ends ejections whose time is over.
  Change tick(size_t i, uint64_t now_ms);
  // The operator's override; nullopt clears it.
  Change set_admin(size_t i, std::optional<BackendState> forced, uint64_t now_ms);

  // Whether one more member may be ejected now.
  bool may_eject() const;

  // The newest tip live traffic saw on member i (it only counts toward lag; the last
  // probe's tip is kept too). Recomputes lag and evictions.
  void note_live_tip(size_t i, uint64_t slot);

  // The pool's best tip as of the last refold: the highest tip (probe or live traffic)
  // among members that answered, whose last probe was not down and that are not on a
  // fork; nullopt while none is known. The cache's slot-bound rules are judged against it.
  std::optional<uint64_t> best_tip() const { return best_tip_; }

  // The slot a fork round asks every member about: fork_depth_slots below the lowest tip
  // among the members that count (answered, not down unless for a fork, not behind);
  // nullopt with fewer than two such members or a chain shorter than the depth.
  std::optional<uint64_t> fork_check_slot() const;
  // Ballots from the members' last probes (Ogmios lastKnownTip): the highest tip slot
  // that two or more counting members share, each voting its hash there; the others
  // abstain. Only a probe answered since the member's last tip vote counts (one probe is
  // never two rounds). weights[i] is member i's weight. nullopt: no such slot.
  std::optional<SlotRound> tip_ballots(std::span<const uint32_t> weights) const;
  // One fork round (ballots[i] for member i, weights for all): marks and unmarks the
  // source's marks (a member is forked while either mark says so), and every published
  // state that changed, as (member, change).
  Tally fork_round(std::span<const Ballot> ballots, ForkSource source, uint64_t now_ms,
                   std::vector<std::pair<size_t, Change>>& changes);

 private:
  void refold_lag();
  void refresh_evict(BackendRecord& b) const;
  bool counts_for_forks(const BackendRecord& b) const;

 public:
  // Whether member i is asked in fork rounds (answered, not down unless for a fork, not
  // behind the pool).
  bool votes_in_forks(size_t i) const { return counts_for_forks(members_[i]); }

 private:
  Change settle(BackendRecord& b, BackendState before, std::string_view cause, uint64_t now_ms);

  PoolParams p_;
  std::vector<BackendRecord> members_;
  std::optional<uint64_t> best_tip_;  // judge_lag's, kept by refold_lag
};

}  // namespace health
