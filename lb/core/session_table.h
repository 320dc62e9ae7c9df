#pragma once
// The session table: user key -> pinned backend, shared by all workers and sharded with
// one lock per shard (DESIGN.md "Threads"). Each shard keeps its entries in LRU order, so
// idle expiry (TTL) and the max_sessions bound both drop from the cold end.
// Time is injected (monotonic milliseconds) so tests need no clock.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "lb/core/backend_ref.h"
#include "lb/core/session_key.h"

namespace lb {

struct Pin {
  BackendRef backend = 0;
  uint64_t last_slot = 0;  // highest chain slot this user has seen (0 = unknown)
  uint8_t last_move = 0;   // why the user was last moved: a MoveReason value, 0 = never
};

// What touch() with a refresh epoch returns (issue 15's shared store).
struct TouchResult {
  Pin pin;
  bool refresh_due = false;  // first touch of this key in this refresh epoch: queue a refresh
};

struct SessionTableStats {
  uint64_t size = 0;
  uint64_t expired = 0;  // dropped after ttl idle
  uint64_t evicted = 0;  // dropped by the max_sessions bound
};

struct SessionMemory {
  size_t bytes = 0;
  uint64_t sessions = 0;
};

class SessionTable {
 public:
  static constexpr BackendRef kMaxBackends = lb::kMaxBackends;

  SessionTable(size_t max_sessions, uint64_t ttl_ms, size_t shards = 64);
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // The pin of `key` if present and not idle longer than ttl at now_ms; refreshes its
  // last-seen time and LRU position. An expired entry is removed and counted.
  std::optional<Pin> touch(const SessionKey& key, uint64_t now_ms);

  // touch(), and also tells whether the key's TTL in the shared store is due for a refresh:
  // true on the first touch whose `epoch` (refresh_epoch(now_ms, ttl), refresh_epoch.h)
  // differs from the entry's, which then takes `epoch`. So each key is refreshed at most
  // once per epoch per process, whichever worker touches it. pin() and adopt() stamp the
  // entry with the current epoch (the store was just written or read).
  std::optional<TouchResult> touch(const SessionKey& key, uint64_t now_ms, uint16_t epoch);

  // A pin read from the shared store (another instance's decision): inserts the key, or
  // re-pins it to `backend`, with last_slot raised to max(local, last_slot) and `move` kept
  // as last_move when the backend changes. Evicts like pin() when the table is full.
  // Returns true when the key was unknown (or expired) or named another backend.
  bool adopt(const SessionKey& key, BackendRef backend, uint64_t last_slot, uint8_t move,
             uint64_t now_ms);

  // Drops key only if it is pinned to `backend` (an invalidation from another instance
  // moved it away from there; if we already follow a newer pin, keep it). True if dropped.
  bool erase_if(const SessionKey& key, BackendRef backend);

  // Pins key to backend (insert, or move keeping last_slot), evicting the least recently
  // used entry of the shard when the table is full. `move` (a MoveReason value) is kept
  // as the pin's last_move when this changes the backend of a known key. `forget_slot`:
  // the move leaves a fork, whose slots say nothing about the majority's chain, so the
  // key's last_slot starts again from the next answer.
  void pin(const SessionKey& key, BackendRef backend, uint64_t now_ms, uint8_t move = 0,
           bool forget_slot = false);

  // The pin of `key` as it stands, expired or not, without refreshing it (for the access
  // log's slot field): nullopt for an unknown key.
  std::optional<Pin> peek(const SessionKey& key) const;

  // Raises the key's last_slot to `slot` if higher; no-op for unknown keys. Returns the
  // last_slot it had before (0 = unknown key or slot), read under the same lock, so the
  // caller can tell an answer older than what the user saw (lb/core/regression.h).
  uint64_t record_slot(const SessionKey& key, uint64_t slot);

  bool erase(const SessionKey& key);

  // Removes entries idle longer than ttl, at most max_per_shard per shard; returns count.
  size_t sweep(uint64_t now_ms, size_t max_per_shard = SIZE_MAX);

  // Pinned sessions per backend (maintained on every insert/move/erase/expiry/eviction).
  uint64_t pinned(BackendRef backend) const;

  // Sessions of `backend` dropped after ttl idle, since start (touch, pin, sweep and a
  // full shard's cold end alike); their sum over all refs is stats().expired.
  uint64_t expired(BackendRef backend) const;

  // Reload: new limits apply from now on (shrinking evicts from the cold end lazily).
  void set_limits(size_t max_sessions, uint64_t ttl_ms);

  SessionTableStats stats() const;

  // Calls fn for every live entry (for the state file and tests); holds one shard lock
  // at a time.
  void for_each(
      const std::function<void(const SessionKey&, const Pin&, uint64_t last_seen_ms)>& fn) const;

  // Bytes the table holds now (see memory_bytes() in session_table.cpp for what counts),
  // and the sessions it holds them for.
  SessionMemory memory() const;

  // memory().bytes / memory().sessions, rounded up (0 when the table is empty: there is no
  // per-session figure then); the <=128 bytes/session target is checked against it.
  size_t bytes_per_session() const;

 private:
  // Both touch()es: epoch null leaves the entry's refresh epoch alone.
  std::optional<TouchResult> touch_entry(const SessionKey& key, uint64_t now_ms,
                                         const uint16_t* epoch);
  struct Shard;
  friend struct SessionTableTestPeer;  // tests read per-shard sizes to check the spread
  Shard& shard_for(const SessionKey& key) const;
  size_t shard_size(size_t i) const;
  std::unique_ptr<Shard[]> shards_;
  size_t nshards_;
  std::atomic<size_t> max_per_shard_;
  std::atomic<uint64_t> ttl_ms_;
  std::unique_ptr<std::atomic<uint64_t>[]> pinned_;
  std::unique_ptr<std::atomic<uint64_t>[]> expired_;
};

}  // namespace lb
