// Chain-aware health on the control loop (issue 13): the libuv side of fleet-relative
// lag (live tips in, evictions out) and of fork checks. The decisions are pure
// (health::PoolHealth, health/fork_vote); this file only carries bytes and logs.
#include <algorithm>
#include <string>

#include "health/live_points.h"
#include "health/probe_result.h"
#include "lb/core/balancer.h"
#include "lb/net/health_monitor.h"
#include "lb/net/http_probe.h"
#include "lb/net/log.h"

namespace lb::net {

// One Kupo round: a ballot per member, filled as the answers come back.
struct HealthMonitor::ForkRound {
  std::vector<health::Ballot> ballots;
  size_t pending = 0;
};

// Live traffic raises BackendStats::tip_slot from X-Most-Recent-Checkpoint between
// probes (and a probe resets it to what the backend reports): the pool's best tip is
// the best of both.
void HealthMonitor::note_live_tips(size_t pi) {
  const RuntimePool& rp = rt_->pools[pi];
  health::PoolHealth& h = pools_[pi].policy;
  for (size_t i = 0; i < rp.backends.size() && i < h.size(); ++i)
    h.note_live_tip(i, rp.backends[i].stats->tip_slot.load(std::memory_order_relaxed));
}

// The cache judges slot-bound answers (Kupo /metadata/{slot}, /checkpoints/{slot}) deep
// enough against this tip, so it is the policy's: forked members and members whose last
// probe was down never raise it. Unknown (no counted member) is 0, which caches none.
void HealthMonitor::publish_best_tip(size_t pi) {
  const RuntimePool& rp = rt_->pools[pi];
  if (!rp.cache) return;
  rp.cache->best_tip.store(pools_[pi].policy.best_tip().value_or(0), std::memory_order_relaxed);
}

// Stores each member's eviction reason where the workers read it, and says when one
// changes: the operator sees why pinned users are about to move (or may stay again).
// Every refold of the pool's lag ends here, so the best tip is published with them.
void HealthMonitor::publish_evictions(size_t pi) {
  publish_best_tip(pi);
  const RuntimePool& rp = rt_->pools[pi];
  const health::PoolHealth& h = pools_[pi].policy;
  for (size_t i = 0; i < rp.backends.size() && i < h.size(); ++i) {
    const health::BackendRecord& r = h.at(i);
    const MoveReason before = rp.backends[i].stats->evict.exchange(r.evict);
    if (before == r.evict) continue;
    if (r.evict == MoveReason::none)
      log_backend(LogLevel::info, rp.name, rp.backends[i].name,
                  "pinned users may stay again (was %s)", move_reason_name(before));
    else
      log_backend(LogLevel::warn, rp.name, rp.backends[i].name,
                  "pinned users move on their next request: %s (%llu slots behind the pool)",
                  move_reason_name(r.evict), static_cast<unsigned long long>(r.lag_slots));
  }
}

// Once per health interval per Cardano pool. Ogmios: the tips of the last probes, where
// they coincide. Kupo: live traffic's checkpoints at or below fork_depth_slots under the
// lowest tip (when there are new ones), then GET /checkpoints/{slot} on every voting
// member at that depth, unless the pool is rate-limited (no quota is spent on forks).
void HealthMonitor::maybe_check_forks(size_t pi, uint64_t now_ms) {
  const RuntimePool& rp = rt_->pools[pi];
  Pool& pool = pools_[pi];
  if (rp.kind != config::PoolKind::kupo && rp.kind != config::PoolKind::ogmios) return;
  if (pool.round || now_ms < pool.next_fork_ms) return;
  pool.next_fork_ms = now_ms + rt_->config.pools[pi].health.interval_ms;
  if (rp.kind == config::PoolKind::ogmios) {
    std::vector<uint32_t> weights;
    for (const RuntimeBackend& b : rp.backends) weights.push_back(b.weight);
    if (std::optional<health::SlotRound> r = pool.policy.tip_ballots(weights))
      finish_fork_round(pi, r->ballots, health::ForkSource::tips, r->slot);
    return;
  }
  if (std::optional<uint64_t> slot = pool.policy.fork_check_slot()) {
    live_fork_round(pi, *slot);
    // The probes cost requests: a rate-limited pool relies on live evidence alone.
    if (!rp.quota) start_kupo_round(pi, *slot);
  }
}

// Live evidence: the members' recent (slot, hash) points from data responses, compared
// at the newest slot below max_slot that two or more hold and no earlier live round used.
void HealthMonitor::live_fork_round(size_t pi, uint64_t max_slot) {
  const RuntimePool& rp = rt_->pools[pi];
  Pool& pool = pools_[pi];
  const size_t n = std::min(rp.backends.size(), pool.policy.size());
  std::vector<std::vector<uint64_t>> points(n);
  std::vector<health::LiveMember> members(n);
  for (size_t i = 0; i < n; ++i) {
    const RuntimeBackend& b = rp.backends[i];
    points[i] = b.stats->live_points.snapshot();
    members[i] = {points[i], b.reachable() && pool.policy.votes_in_forks(i), b.weight};
  }
  std::optional<health::SlotRound> r = health::live_round(members, max_slot, pool.round_slot);
  if (!r) return;
  pool.round_slot = r->slot;
  finish_fork_round(pi, r->ballots, health::ForkSource::live, r->slot);
}

void HealthMonitor::start_kupo_round(size_t pi, uint64_t slot) {
  const RuntimePool& rp = rt_->pools[pi];
  const config::Pool& pc = rt_->config.pools[pi];
  Pool& pool = pools_[pi];
  auto round = std::make_shared<ForkRound>();
  round->ballots.resize(rp.backends.size());
  std::vector<size_t> asked;
  for (size_t i = 0; i < rp.backends.size() && i < pool.policy.size(); ++i) {
    round->ballots[i].weight = rp.backends[i].weight;
    if (rp.backends[i].reachable() && pool.policy.votes_in_forks(i)) asked.push_back(i);
  }
  if (asked.size() < 2) return;
  round->pending = asked.size();
  pool.round = round;
  std::string extra;
  for (const http::InjectedHeader& h : rp.inject)
    extra.append(h.name).append(": ").append(h.value).append("\r\n");
  const std::string path = "/checkpoints/" + std::to_string(slot);
  for (size_t i : asked) {
    const RuntimeBackend& b = rp.backends[i];
    std::shared_ptr<const AddressBook::List> addrs = b.addrs->get();
    ProbeTls tls;
    if (b.tls) tls = {b.tls_ctx, b.tls_name};
    const sockaddr_storage& addr = (*addrs)[b.addrs->preferred() % addrs->size()];
    http_probe(loop_, addr, b.address, path, pc.health.timeout_ms, b.tls ? &tls : nullptr, extra,
               [this, round, i, name = rp.name](ProbeAnswer a) {
                 if (stopped_) return;
                 round->ballots[i].value = health::parse_kupo_checkpoint(a.status, a.body);
                 if (--round->pending > 0) return;
                 // A reload since the round began dropped it (its members may differ).
                 for (size_t pi = 0; pi < pools_.size(); ++pi)
                   if (pools_[pi].name == name && pools_[pi].round == round) {
                     pools_[pi].round.reset();
                     finish_fork_round(pi, round->ballots, health::ForkSource::probes);
                   }
               });
  }
}

// Applies a round: marks and heals (published like any state change, reason "fork"),
// counts it, and says loudly when the pool cannot tell which chain is right.
void HealthMonitor::finish_fork_round(size_t pi, std::span<const health::Ballot> ballots,
                                      health::ForkSource source, uint64_t slot) {
  const RuntimePool& rp = rt_->pools[pi];
  Pool& pool = pools_[pi];
  const bool live = source == health::ForkSource::live;
  ForkChecks& counts = live ? pool.live_forks : pool.forks;
  const std::string what = live ? "live responses at slot " + std::to_string(slot)
                           : source == health::ForkSource::tips
                               ? "tips at slot " + std::to_string(slot)
                               : std::string("probes");
  std::vector<std::pair<size_t, health::Change>> changes;
  const health::Tally t = pool.policy.fork_round(ballots, source, uv_now(loop_), changes);
  switch (t.result) {
    case health::ForkResult::none:
      return;
    case health::ForkResult::agree:
      ++counts.agree;
      break;
    case health::ForkResult::disagree:
      ++counts.disagree;
      for (size_t i = 0; i < ballots.size() && i < rp.backends.size(); ++i)
        if (ballots[i].value && *ballots[i].value != *t.majority)
          log_backend_limited(rp.name, rp.backends[i].name,
                              "fork check (%s): holds %s where the pool's majority holds %s",
                              what.c_str(), ballots[i].value->c_str(), t.majority->c_str());
      break;
    case health::ForkResult::no_majority:
      ++counts.no_majority;
      log_pool_limited(rp.name,
                       "fork check (%s): backends disagree on the chain and no strict majority "
                       "of the weight agrees; nobody is marked",
                       what.c_str());
      break;
  }
  for (auto& [i, c] : changes) {
    auto it = probes_.find(rp.backends[i].ref);
    if (it != probes_.end()) publish(*it->second, c);
  }
  publish_evictions(pi);
}

ForkChecks HealthMonitor::fork_checks(const std::string& pool, bool live) const {
  for (const Pool& p : pools_)
    if (p.name == pool) return live ? p.live_forks : p.forks;
  return {};
}

}  // namespace lb::net
