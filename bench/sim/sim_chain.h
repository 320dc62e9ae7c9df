#pragma once
// The chain as one simulated Kupo sees it, as a pure function of injected wall time (ms).
// The node tip moves one slot per second (Shelley's slot length) from a start slot; blocks
// land every `block_interval` slots (1 in 20 on average on Cardano, active slot coefficient
// f = 0.05); the index checkpoint is the newest block at or before node tip − lag. A frozen
// tip or a lost node connection pins what Kupo reports where it was, and the time since the
// last block grows, as a real stuck or disconnected Kupo shows it.
//
// Issue 13's failures, steered at runtime: a fork (header hashes from a slot on differ from
// the honest chain's, the same for every instance forked at that slot), a read-only replica
// whose writer stalled (checkpoint frozen and reported as the node tip, so /health stays 200)
// and a rollback (tip and checkpoint go back N slots, then move on one slot a second).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bench {

enum class SimHealth : uint8_t { synced, behind, disconnected };

std::optional<SimHealth> parse_sim_health(std::string_view s);
const char* to_string(SimHealth h);

class SimChain {
 public:
  // Kupo reports network_synchronization = 1 within this many slots of the network.
  static constexpr uint64_t kSyncToleranceSlots = 120;
  // The lag a "behind" instance gets when told so without a lag of its own.
  static constexpr uint64_t kDefaultBehindLag = 1000;

  SimChain(uint64_t start_slot, uint64_t now_ms, uint64_t block_interval = 20);

  uint64_t node_tip(uint64_t now_ms) const;
  // The most recent indexed block: what X-Most-Recent-Checkpoint carries.
  uint64_t checkpoint(uint64_t now_ms) const;
  uint64_t seconds_since_last_block(uint64_t now_ms) const;
  // Checkpoint against the network's wall-clock slot, floored to Kupo's 5 decimals.
  double network_synchronization(uint64_t now_ms) const;
  // /health status as Kupo answers it: 200 connected and synced, 202 connected but behind,
  // 503 disconnected.
  int health_status(uint64_t now_ms) const;
  SimHealth health(uint64_t now_ms) const;

  bool connected() const { return connected_; }
  bool frozen() const { return frozen_; }
  bool read_only_stale() const { return read_only_; }
  std::optional<uint64_t> fork_at() const { return fork_at_; }
  // Slots this instance has been rolled back by, in total, since it was last synced.
  uint64_t rewound() const { return rewind_; }
  uint64_t lag() const { return lag_; }
  uint64_t block_interval() const { return interval_; }
  uint64_t block_at_or_before(uint64_t slot) const { return slot - slot % interval_; }

  void set_frozen(bool frozen, uint64_t now_ms);
  void set_lag(uint64_t slots) { lag_ = slots; }
  // synced clears the lag, behind gives one if there is none, disconnected pins the values.
  // synced also undoes rollbacks (a re-synced instance is back at the network's tip).
  void set_health(SimHealth h, uint64_t now_ms);
  // From `slot` on, header hashes leave the honest chain; nullopt heals.
  void set_fork_at(std::optional<uint64_t> slot) { fork_at_ = slot; }
  // A read-only Kupo whose writer stopped: checkpoint and node tip freeze where the
  // checkpoint is now, health stays 200 while connected. false resumes at the live tip.
  void set_read_only_stale(bool on, uint64_t now_ms);
  // Tip and checkpoint go back `slots` now (also a frozen or disconnected one), then follow
  // the chain again from there.
  void rollback(uint64_t slots, uint64_t now_ms);

  // A deterministic stand-in for the header hash of the block at `slot` (64 hex digits).
  static std::string header_hash(uint64_t slot);
  // The hash of `slot` on the fork that left the honest chain at `fork_at` (honest below it
  // or without a fork): deterministic, so instances forked at the same slot agree.
  static std::string header_hash(uint64_t slot, std::optional<uint64_t> fork_at);
  // The header hash of `slot` as this instance sees the chain.
  std::string hash_at(uint64_t slot) const { return header_hash(slot, fork_at_); }

  // The network's slot by the wall clock (what a synced node's tip would be).
  uint64_t wall_slot(uint64_t now_ms) const;

 private:
  uint64_t start_slot_;
  uint64_t start_ms_;
  uint64_t interval_;
  uint64_t lag_ = 0;
  bool connected_ = true;
  bool frozen_ = false;
  uint64_t frozen_slot_ = 0;
  uint64_t disconnected_slot_ = 0;
  bool read_only_ = false;
  uint64_t read_only_slot_ = 0;  // the frozen checkpoint of a read-only-stale instance
  uint64_t rewind_ = 0;
  std::optional<uint64_t> fork_at_;
};

}  // namespace bench
