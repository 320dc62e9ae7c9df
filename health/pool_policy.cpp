#include "health/pool_policy.h"

#include <algorithm>
#include <memory>

#include "health/lag.h"

namespace health {

PoolParams pool_params(const config::Pool& p) {
  PoolParams r;
  r.backend.rise = p.health.rise;
  r.backend.fall = p.health.fall;
  r.backend.consecutive_503 = p.eject.consecutive_503;
  r.backend.base_eject_ms = p.eject.base_time_ms;
  r.backend.max_eject_ms = p.eject.max_time_ms;
  r.max_lag_slots = p.health.max_lag_slots;
  r.stale_after_s = static_cast<double>(p.health.stale_after_ms) / 1000.0;
  r.max_percent = p.eject.max_percent;
  r.slow_start_ms = p.slow_start_ms;
  r.move_lag_slots = p.health.move_lag_slots.value_or(3 * p.health.max_lag_slots);
  r.fork_depth_slots = p.health.fork_depth_slots;
  return r;
}

ProbeResult interpret_probe(config::PoolKind kind, int expect_status, int status,
                            std::string_view body, std::string_view error) {
  if (status == 0) return probe_failed(error);
  switch (kind) {
    case config::PoolKind::kupo:
      return parse_kupo_health(status, body);
    case config::PoolKind::ogmios:
      return parse_ogmios_health(status, body);
    case config::PoolKind::blockfrost:
      return parse_blockfrost_health(status, body);
    case config::PoolKind::http:
      return parse_http_health(status, expect_status);
  }
  return probe_failed("unknown kind");
}

std::string probe_path(const config::Pool& p) {
  return p.kind == config::PoolKind::http ? p.health.path : std::string("/health");
}

BackendState lag_level(BackendState probe_level, bool lagging) {
  return lagging ? lb::worst(probe_level, BackendState::draining) : probe_level;
}

BackendState level_level(BackendState probe_level, bool tip_known, bool behind) {
  return probe_level == BackendState::draining && tip_known && !behind ? BackendState::up
                                                                       : probe_level;
}

// (ejected + 1) / size <= max_percent / 100, in integers: the floor of today's rule.
bool within_eject_budget(size_t ejected_now, size_t pool_size, uint32_t max_percent) {
  return (ejected_now + 1) * 100 <= static_cast<size_t>(max_percent) * pool_size;
}

bool ramp_starts(bool returning, BackendState before, BackendState after) {
  return after == BackendState::up && before != BackendState::up &&
         (returning || before == BackendState::down);
}

PoolHealth::PoolHealth(PoolParams p) : p_(p) {}

void PoolHealth::set_params(const PoolParams& p) {
  p_ = p;
  for (BackendRecord& b : members_) b.sm.set_params(p_.backend);
}

void PoolHealth::set_members(std::span<const lb::BackendRef> refs, bool ramp_new, uint64_t now_ms) {
  std::vector<BackendRecord> next;
  next.reserve(refs.size());
  for (lb::BackendRef ref : refs) {
    if (std::optional<size_t> i = index_of(ref)) {
      next.push_back(std::move(members_[*i]));
      continue;
    }
    BackendRecord& b = next.emplace_back();
    b.ref = ref;
    b.sm.set_params(p_.backend);
    // A reload's new backend may have a cold cache; one present at start has no
    // traffic to compare with, so everyone starts together.
    if (ramp_new) b.ramp_start_ms = std::max<uint64_t>(now_ms, 1);
  }
  members_ = std::move(next);
}

std::optional<size_t> PoolHealth::index_of(lb::BackendRef ref) const {
  for (size_t i = 0; i < members_.size(); ++i)
    if (members_[i].ref == ref) return i;
  return std::nullopt;
}

Change PoolHealth::on_probe(size_t i, ProbeResult r, uint64_t now_ms) {
  BackendRecord& b = members_[i];
  b.probed = true;
  switch (r.level) {
    case BackendState::up:
      ++b.probes_up;
      break;
    case BackendState::draining:
      ++b.probes_draining;
      break;
    case BackendState::down:
      ++b.probes_down;
      break;
  }
  b.last = std::move(r);
  refold_lag();
  const BackendState before = b.sm.state();
  const bool tip_known = b.last.tip_slot || b.live_tip;
  const BackendState level = level_level(b.last.level, tip_known, b.lagging);
  b.sm.on_probe(lag_level(level, b.lagging), now_ms);
  std::string cause = b.last.detail;
  if (b.lagging)
    cause = b.stale && !b.far_behind && b.lag_slots == 0
                ? "stale"
                : "lagging " + std::to_string(b.lag_slots) + " slots behind the pool";
  else if (level != b.last.level)
    cause += ", level with the pool";
  return settle(b, before, cause, now_ms);
}

Change PoolHealth::on_response(size_t i, int status, uint64_t now_ms) {
  const bool budget = may_eject();
  BackendRecord& b = members_[i];
  const BackendState before = b.sm.state();
  b.sm.on_response(status, now_ms, budget);
  return settle(b, before, status == 503 ? "consecutive 503s" : "answering again", now_ms);
}

Change PoolHealth::on_passive_failure(size_t i, uint64_t now_ms) {
  BackendRecord& b = members_[i];
  const BackendState before = b.sm.state();
  b.sm.on_passive_failure(now_ms);
  return settle(b, before, "failures on live traffic", now_ms);
}

Change PoolHealth::on_response_timeout(size_t i, uint64_t now_ms) {
  const bool budget = may_eject();
  BackendRecord& b = members_[i];
  const BackendState before = b.sm.state();
  b.sm.on_response_timeout(now_ms, budget);
  return settle(b, before, "response timeouts", now_ms);
}

Change PoolHealth::tick(size_t i, uint64_t now_ms) {
  BackendRecord& b = members_[i];
  const BackendState before = b.sm.state();
  b.sm.tick(now_ms);
  return settle(b, before, "ejection over", now_ms);
}

Change PoolHealth::set_admin(size_t i, std::optional<BackendState> forced, uint64_t now_ms) {
  BackendRecord& b = members_[i];
  const BackendState before = b.sm.state();
  b.sm.set_admin(forced);
  return settle(b, before, forced ? "operator" : "operator cleared", now_ms);
}

bool PoolHealth::may_eject() const {
  const size_t ejected = static_cast<size_t>(std::count_if(
      members_.begin(), members_.end(), [](const BackendRecord& b) { return b.sm.ejected(); }));
  return within_eject_budget(ejected, members_.size(), p_.max_percent);
}

// The best tip comes from every member that answered and is not down (health/lag), so
// one probe answer can change the verdict of its neighbours too; they act on it at their
// own next probe, as before the split.
void PoolHealth::refold_lag() {
  std::vector<TipView> tips(members_.size());
  for (size_t i = 0; i < members_.size(); ++i) {
    const BackendRecord& b = members_[i];
    if (b.probed) {
      tips[i].tip_slot = b.last.tip_slot;
      tips[i].seconds_since_last_block = b.last.seconds_since_last_block;
    }
    // Live traffic may have seen a newer checkpoint than the last probe.
    if (b.live_tip) tips[i].tip_slot = std::max(tips[i].tip_slot.value_or(0), *b.live_tip);
    // A forked backend's tip is on another chain: it must not set the bar.
    tips[i].counted = b.probed && b.last.level != BackendState::down && !b.forked();
  }
  std::vector<LagVerdict> v(tips.size());
  best_tip_ = judge_lag(tips, {p_.max_lag_slots, p_.move_lag_slots, p_.stale_after_s}, v);
  for (size_t i = 0; i < members_.size(); ++i) {
    BackendRecord& b = members_[i];
    b.lagging = v[i].lagging();
    b.lag_slots = v[i].lag_slots;
    b.far_behind = v[i].far_behind;
    b.stale = v[i].stale;
    refresh_evict(b);
  }
}

// A fork is the worst reason (the answers are wrong, not old), then lag, then staleness.
void PoolHealth::refresh_evict(BackendRecord& b) const {
  if (b.forked())
    b.evict = lb::MoveReason::fork;
  else if (b.far_behind)
    b.evict = lb::MoveReason::lag;
  else if (b.stale)
    b.evict = lb::MoveReason::stale;
  else
    b.evict = lb::MoveReason::none;
}

void PoolHealth::note_live_tip(size_t i, uint64_t slot) {
  if (slot == 0) return;  // BackendStats' "unknown"
  members_[i].live_tip = slot;
  refold_lag();
}

// Members whose answers say something about the chain: answered, not down (a forked one
// is down because of the vote, so it still votes and can heal), not behind.
bool PoolHealth::counts_for_forks(const BackendRecord& b) const {
  if (!b.probed || !b.last.tip_slot || b.lagging) return false;
  return b.forked() || b.last.level != BackendState::down;
}

std::optional<uint64_t> PoolHealth::fork_check_slot() const {
  std::optional<uint64_t> lowest;
  size_t n = 0;
  for (const BackendRecord& b : members_) {
    if (!counts_for_forks(b)) continue;
    ++n;
    lowest = std::min(lowest.value_or(UINT64_MAX), *b.last.tip_slot);
  }
  if (n < 2 || !lowest || *lowest < p_.fork_depth_slots) return std::nullopt;
  return *lowest - p_.fork_depth_slots;
}

std::optional<SlotRound> PoolHealth::tip_ballots(std::span<const uint32_t> weights) const {
  auto votes = [&](const BackendRecord& b) {
    return counts_for_forks(b) && b.last.tip_hash && b.probes() > b.probes_at_tip_vote;
  };
  std::optional<uint64_t> common;
  for (size_t i = 0; i < members_.size(); ++i) {
    const BackendRecord& a = members_[i];
    if (!votes(a)) continue;
    for (size_t j = i + 1; j < members_.size(); ++j)
      if (votes(members_[j]) && *members_[j].last.tip_slot == *a.last.tip_slot)
        common = std::max(common.value_or(0), *a.last.tip_slot);
  }
  if (!common) return std::nullopt;
  SlotRound r;
  r.slot = *common;
  r.ballots.resize(members_.size());
  for (size_t i = 0; i < members_.size(); ++i) {
    const BackendRecord& b = members_[i];
    r.ballots[i].weight = i < weights.size() ? weights[i] : 1;
    if (votes(b) && *b.last.tip_slot == *common)
      r.ballots[i].value = std::to_string(*common) + ":" + *b.last.tip_hash;
  }
  return r;
}

Tally PoolHealth::fork_round(std::span<const Ballot> ballots, ForkSource source, uint64_t now_ms,
                             std::vector<std::pair<size_t, Change>>& changes) {
  const size_t n = std::min(ballots.size(), members_.size());
  std::vector<ForkMark> marks(n);
  uint64_t quorum = 0;
  for (size_t i = 0; i < n; ++i) {
    marks[i] = source == ForkSource::live ? members_[i].live_fork : members_[i].fork;
    if (counts_for_forks(members_[i])) quorum += ballots[i].weight;
  }
  const Tally t = vote(ballots.subspan(0, n), marks,
                       source == ForkSource::probes ? 0 : std::max<uint64_t>(quorum, 1));
  for (size_t i = 0; i < n; ++i) {
    BackendRecord& b = members_[i];
    if (source == ForkSource::tips && ballots[i].value) b.probes_at_tip_vote = b.probes();
    const bool was = b.forked();
    (source == ForkSource::live ? b.live_fork : b.fork) = marks[i];
    if (was == b.forked()) continue;
    const BackendState before = b.sm.state();
    b.sm.set_forked(b.forked());
    Change c = settle(b, before,
                      b.forked() ? "disagrees with the pool's majority at a checkpoint"
                                 : "agrees with the pool's majority again",
                      now_ms);
    changes.emplace_back(i, std::move(c));
  }
  refold_lag();
  return t;
}

// Every event ends here: the ramp rule, the memory of having been down or ejected, and
// the transition count and text.
Change PoolHealth::settle(BackendRecord& b, BackendState before, std::string_view cause,
                          uint64_t now_ms) {
  Change c;
  c.before = before;
  c.after = b.sm.state();
  if (ramp_starts(b.returning, c.before, c.after)) {
    b.ramp_start_ms = std::max<uint64_t>(now_ms, 1);
    c.ramp_started = true;
  }
  if (c.after == BackendState::up)
    b.returning = false;
  else if (c.after == BackendState::down || b.sm.ejected() || b.sm.awaiting_probe())
    b.returning = true;
  if (c.changed()) {
    ++b.transitions;
    c.why = std::string(reason_name(b.sm.reason())) + ": " + std::string(cause);
  }
  return c;
}

}  // namespace health
