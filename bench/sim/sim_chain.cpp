#include "bench/sim/sim_chain.h"

#include <algorithm>
#include <cmath>

#include "lb/core/splitmix.h"

namespace bench {

namespace {

uint64_t mix(uint64_t x) { return lb::splitmix64(x); }

}  // namespace

std::optional<SimHealth> parse_sim_health(std::string_view s) {
  if (s == "synced") return SimHealth::synced;
  if (s == "behind") return SimHealth::behind;
  if (s == "disconnected") return SimHealth::disconnected;
  return std::nullopt;
}

const char* to_string(SimHealth h) {
  switch (h) {
    case SimHealth::synced:
      return "synced";
    case SimHealth::behind:
      return "behind";
    case SimHealth::disconnected:
      return "disconnected";
  }
  return "synced";
}

SimChain::SimChain(uint64_t start_slot, uint64_t now_ms, uint64_t block_interval)
    : start_slot_(start_slot),
      start_ms_(now_ms),
      interval_(std::max<uint64_t>(1, block_interval)) {}

uint64_t SimChain::wall_slot(uint64_t now_ms) const {
  return start_slot_ + (now_ms > start_ms_ ? (now_ms - start_ms_) / 1000 : 0);
}

uint64_t SimChain::node_tip(uint64_t now_ms) const {
  // A read-only Kupo has no node: it reports its own checkpoint as the tip.
  if (read_only_) return read_only_slot_;
  const uint64_t wall = wall_slot(now_ms);
  uint64_t tip = frozen_ ? frozen_slot_ : (wall > rewind_ ? wall - rewind_ : 0);
  if (!connected_) tip = std::min(tip, disconnected_slot_);
  return tip;
}

uint64_t SimChain::checkpoint(uint64_t now_ms) const {
  if (read_only_) return read_only_slot_;
  const uint64_t tip = node_tip(now_ms);
  return block_at_or_before(tip > lag_ ? tip - lag_ : 0);
}

uint64_t SimChain::seconds_since_last_block(uint64_t now_ms) const {
  // The indexer saw its newest block when the node tip reached checkpoint + lag; map that
  // slot back to wall time (it may precede the start of the simulation).
  const int64_t seen_slot = static_cast<int64_t>(checkpoint(now_ms) + lag_);
  const int64_t seen_ms =
      static_cast<int64_t>(start_ms_) + (seen_slot - static_cast<int64_t>(start_slot_)) * 1000;
  const int64_t elapsed = static_cast<int64_t>(now_ms) - seen_ms;
  return elapsed > 0 ? static_cast<uint64_t>(elapsed / 1000) : 0;
}

double SimChain::network_synchronization(uint64_t now_ms) const {
  const uint64_t network = wall_slot(now_ms);
  const uint64_t cp = checkpoint(now_ms);
  if (network == 0 || network <= cp + kSyncToleranceSlots) return 1.0;
  return std::floor(static_cast<double>(cp) / static_cast<double>(network) * 1e5) / 1e5;
}

int SimChain::health_status(uint64_t now_ms) const {
  if (!connected_) return 503;
  if (read_only_) return 200;  // its tip is its own checkpoint, so it is never behind
  return node_tip(now_ms) - checkpoint(now_ms) > kSyncToleranceSlots ? 202 : 200;
}

SimHealth SimChain::health(uint64_t now_ms) const {
  switch (health_status(now_ms)) {
    case 503:
      return SimHealth::disconnected;
    case 202:
      return SimHealth::behind;
    default:
      return SimHealth::synced;
  }
}

void SimChain::set_frozen(bool frozen, uint64_t now_ms) {
  if (frozen && !frozen_) frozen_slot_ = node_tip(now_ms);
  frozen_ = frozen;
}

void SimChain::set_health(SimHealth h, uint64_t now_ms) {
  switch (h) {
    case SimHealth::synced:
      connected_ = true;
      lag_ = 0;
      rewind_ = 0;
      break;
    case SimHealth::behind:
      connected_ = true;
      if (lag_ <= kSyncToleranceSlots) lag_ = kDefaultBehindLag;
      break;
    case SimHealth::disconnected:
      if (connected_) disconnected_slot_ = node_tip(now_ms);
      connected_ = false;
      break;
  }
}

void SimChain::set_read_only_stale(bool on, uint64_t now_ms) {
  if (on && !read_only_) read_only_slot_ = checkpoint(now_ms);
  read_only_ = on;
}

void SimChain::rollback(uint64_t slots, uint64_t now_ms) {
  rewind_ = std::min(wall_slot(now_ms), rewind_ + slots);
  auto back = [slots](uint64_t& s) { s = s > slots ? s - slots : 0; };
  back(frozen_slot_);
  back(disconnected_slot_);
  back(read_only_slot_);
  read_only_slot_ = block_at_or_before(read_only_slot_);
}

std::string SimChain::header_hash(uint64_t slot, std::optional<uint64_t> fork_at) {
  if (!fork_at || slot < *fork_at) return header_hash(slot);
  // A salt per fork point keeps the forked chain apart from the honest one and from forks
  // at other slots, while the hash stays a pure function of (slot, fork point).
  return header_hash(mix(*fork_at ^ 0x666f726b666f726bULL) ^ slot);
}

std::string SimChain::header_hash(uint64_t slot) {
  static const char* hex = "0123456789abcdef";
  std::string out(64, '0');
  uint64_t x = slot;
  for (int word = 0; word < 4; ++word) {
    x = mix(x);
    for (int i = 0; i < 16; ++i) out[word * 16 + i] = hex[(x >> (60 - 4 * i)) & 0xF];
  }
  return out;
}

}  // namespace bench
