// The sharded session table (see session_table.h for the contract).
//
// Each shard is a slab of fixed-size entries (std::vector<Entry> plus a free list) threaded
// into an intrusive doubly-linked LRU list by 32-bit indices, and an open-addressing index
// of 32-bit entry numbers: linear probing (Knuth, TAOCP vol. 3, 6.4, Algorithm L) with
// backward-shift deletion (Knuth's Algorithm R), so there are no tombstones and a lookup
// stops at the first empty slot. Load factor <= 0.75, grown by doubling. That costs 48
// bytes per entry plus 5.3..10.7 bytes of index, against ~100+ for a node-based
// std::unordered_map + std::list, and keeps 1M pins within the 128 bytes/session target.
//
// Every entry moves to the hot end of its shard's list when it is seen, so the list is
// also ordered by last-seen time: expiry and the max_sessions bound both pop from the
// cold end, O(removed) per sweep.
#include "lb/core/session_table.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "lb/core/refresh_epoch.h"

namespace lb {
namespace {

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
constexpr size_t kNoSlot = std::numeric_limits<size_t>::max();
constexpr uint64_t kFib = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio (Fibonacci hashing)
// Per-shard cap ceiling: keeps entry numbers (uint32) and the index (2^31 slots) in range.
constexpr size_t kMaxShardCap = size_t{1} << 30;
constexpr unsigned kMinIndexBits = 4;

struct Entry {
  SessionKey key;
  uint64_t last_seen_ms = 0;
  uint64_t last_slot = 0;
  uint32_t backend = 0;
  uint32_t prev = kNil;  // towards the hot end; also unused while on the free list
  uint32_t next = kNil;  // towards the cold end; the free-list link while free
  uint8_t move = 0;      // Pin::last_move; lives in what was padding
  uint16_t epoch = 0;    // refresh epoch of the last store refresh (refresh_epoch.h); padding too
};
static_assert(sizeof(Entry) == 48, "Entry layout drives the bytes/session budget");

// The per-shard cap for a total bound: ceil(max_sessions / nshards), at least 1.
size_t shard_cap(size_t max_sessions, size_t nshards) {
  size_t cap = max_sessions / nshards + (max_sessions % nshards != 0 ? 1 : 0);
  return std::clamp<size_t>(cap, 1, kMaxShardCap);
}

// Idle time, clamped at 0: workers pass their own loop's cached clock, which may lag
// another worker's by a few ms, so now_ms can be slightly behind last_seen_ms.
uint64_t idle_ms(const Entry& e, uint64_t now_ms) {
  return now_ms > e.last_seen_ms ? now_ms - e.last_seen_ms : 0;
}

}  // namespace

// One lock's worth of the table. Cache-line aligned so two shards' mutexes never share a
// line between workers.
struct alignas(64) SessionTable::Shard {
  mutable std::mutex mu;
  std::vector<Entry> slab;
  std::vector<uint32_t> index;  // entry numbers, kNil = empty; size 0 or 2^index_bits
  unsigned index_bits = 0;
  uint32_t free_head = kNil;
  uint32_t head = kNil;  // hot end (most recently seen)
  uint32_t tail = kNil;  // cold end (least recently seen)
  uint32_t size = 0;
  uint64_t expired = 0;
  uint64_t evicted = 0;

  // The key's home slot. The shard was chosen from hi, so the slot mixes in lo too.
  size_t home(const SessionKey& k) const {
    return static_cast<size_t>(((k.lo ^ std::rotl(k.hi, 29)) * kFib) >> (64 - index_bits));
  }
  size_t mask() const { return index.size() - 1; }

  // The index slot holding key, or kNoSlot.
  size_t find_slot(const SessionKey& key) const {
    if (size == 0) return kNoSlot;
    for (size_t s = home(key);; s = (s + 1) & mask()) {
      uint32_t e = index[s];
      if (e == kNil) return kNoSlot;
      if (slab[e].key == key) return s;
    }
  }

  // The index slot holding entry e, which must be live.
  size_t slot_of(uint32_t e) const {
    size_t s = home(slab[e].key);
    while (index[s] != e) s = (s + 1) & mask();
    return s;
  }

  // Empties slot i and shifts later members of its probe run back, so that every key
  // stays reachable from its home without tombstones.
  void erase_slot(size_t i) {
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask();
      uint32_t e = index[j];
      if (e == kNil) break;
      size_t k = home(slab[e].key);
      // The member at j may fill the hole at i only if i lies on its path k..j.
      if (((j - k) & mask()) >= ((j - i) & mask())) {
        index[i] = e;
        i = j;
      }
    }
    index[i] = kNil;
  }

  // Places entry e (not yet indexed) in the index, doubling it first if the insert would
  // pass a load factor of 0.75.
  void index_insert(uint32_t e) {
    if ((static_cast<size_t>(size) + 1) * 4 > index.size() * 3) rehash();
    size_t s = home(slab[e].key);
    while (index[s] != kNil) s = (s + 1) & mask();
    index[s] = e;
  }

  // Doubles the index and re-places every live entry (walked through the LRU list).
  void rehash() {
    index_bits = std::max(kMinIndexBits, index_bits + 1);
    std::vector<uint32_t> fresh(size_t{1} << index_bits, kNil);
    index.swap(fresh);
    for (uint32_t e = head; e != kNil; e = slab[e].next) {
      size_t s = home(slab[e].key);
      while (index[s] != kNil) s = (s + 1) & mask();
      index[s] = e;
    }
  }

  void unlink(uint32_t e) {
    Entry& en = slab[e];
    (en.prev != kNil ? slab[en.prev].next : head) = en.next;
    (en.next != kNil ? slab[en.next].prev : tail) = en.prev;
  }

  void push_front(uint32_t e) {
    Entry& en = slab[e];
    en.prev = kNil;
    en.next = head;
    (head != kNil ? slab[head].prev : tail) = e;
    head = e;
  }

  void move_to_front(uint32_t e) {
    if (head == e) return;
    unlink(e);
    push_front(e);
  }

  // A free entry number: recycled first; otherwise the slab grows by doubling but not past
  // cap, since a full shard recycles through the free list and would never use more.
  uint32_t alloc(size_t cap) {
    if (free_head != kNil) {
      uint32_t e = free_head;
      free_head = slab[e].next;
      return e;
    }
    if (slab.size() == slab.capacity()) {
      size_t want = std::max<size_t>(16, slab.capacity() * 2);
      if (slab.size() < cap) want = std::min(want, cap);
      slab.reserve(want);
    }
    slab.emplace_back();
    return static_cast<uint32_t>(slab.size() - 1);
  }

  // Adds key (not present; the caller made room under cap) at the hot end.
  void insert(size_t cap, const SessionKey& key, BackendRef backend, uint64_t now_ms,
              uint64_t last_slot, uint8_t move, uint16_t epoch, std::atomic<uint64_t>* pinned) {
    uint32_t e = alloc(cap);
    Entry& en = slab[e];  // after alloc: growing the slab moves entries
    en.key = key;
    en.last_seen_ms = now_ms;
    en.last_slot = last_slot;
    en.backend = backend;
    en.move = move;
    en.epoch = epoch;
    index_insert(e);
    push_front(e);
    ++size;
    pinned[backend].fetch_add(1, std::memory_order_relaxed);
  }

  // Drops the entry at index slot s and returns its entry number to the free list;
  // returns the backend it was pinned to.
  BackendRef remove_at(size_t s, std::atomic<uint64_t>* pinned) {
    uint32_t e = index[s];
    erase_slot(s);
    unlink(e);
    const BackendRef b = slab[e].backend;
    pinned[b].fetch_sub(1, std::memory_order_relaxed);
    slab[e].next = free_head;
    free_head = e;
    --size;
    return b;
  }

  // Drops the entry at slot s as expired: counted in the shard and for its backend.
  void expire_at(size_t s, std::atomic<uint64_t>* pinned, std::atomic<uint64_t>* expired_by) {
    expired_by[remove_at(s, pinned)].fetch_add(1, std::memory_order_relaxed);
    ++expired;
  }

  // Drops the coldest entry, counting it as expired if it was idle past ttl, else evicted.
  void pop_cold(uint64_t now_ms, uint64_t ttl_ms, std::atomic<uint64_t>* pinned,
                std::atomic<uint64_t>* expired_by) {
    if (idle_ms(slab[tail], now_ms) > ttl_ms) {
      expire_at(slot_of(tail), pinned, expired_by);
    } else {
      remove_at(slot_of(tail), pinned);
      ++evicted;
    }
  }

  size_t bytes() const {
    return slab.capacity() * sizeof(Entry) + index.capacity() * sizeof(uint32_t);
  }
};

SessionTable::SessionTable(size_t max_sessions, uint64_t ttl_ms, size_t shards)
    : shards_(new Shard[std::max<size_t>(shards, 1)]),
      nshards_(std::max<size_t>(shards, 1)),
      max_per_shard_(shard_cap(max_sessions, nshards_)),
      ttl_ms_(ttl_ms),
      pinned_(new std::atomic<uint64_t>[kMaxBackends]()),
      expired_(new std::atomic<uint64_t>[kMaxBackends]()) {}

SessionTable::~SessionTable() = default;

// The shard of a key: the high 32 bits of a Fibonacci hash of key.hi, reduced mod nshards.
SessionTable::Shard& SessionTable::shard_for(const SessionKey& key) const {
  return shards_[static_cast<size_t>((key.hi * kFib) >> 32) % nshards_];
}

size_t SessionTable::shard_size(size_t i) const {
  std::lock_guard lock(shards_[i].mu);
  return shards_[i].size;
}

std::optional<Pin> SessionTable::touch(const SessionKey& key, uint64_t now_ms) {
  std::optional<TouchResult> r = touch_entry(key, now_ms, nullptr);
  if (!r) return std::nullopt;
  return r->pin;
}

std::optional<TouchResult> SessionTable::touch(const SessionKey& key, uint64_t now_ms,
                                               uint16_t epoch) {
  return touch_entry(key, now_ms, &epoch);
}

std::optional<TouchResult> SessionTable::touch_entry(const SessionKey& key, uint64_t now_ms,
                                                     const uint16_t* epoch) {
  Shard& sh = shard_for(key);
  std::lock_guard lock(sh.mu);
  size_t s = sh.find_slot(key);
  if (s == kNoSlot) return std::nullopt;
  uint32_t e = sh.index[s];
  Entry& en = sh.slab[e];
  if (idle_ms(en, now_ms) > ttl_ms_.load(std::memory_order_relaxed)) {
    sh.expire_at(s, pinned_.get(), expired_.get());
    return std::nullopt;
  }
  // max(): a worker whose clock lags must not make the entry look older than it is.
  en.last_seen_ms = std::max(en.last_seen_ms, now_ms);
  sh.move_to_front(e);
  bool due = false;
  if (epoch) {
    due = en.epoch != *epoch;
    en.epoch = *epoch;
  }
  return TouchResult{Pin{en.backend, en.last_slot, en.move}, due};
}

std::optional<Pin> SessionTable::peek(const SessionKey& key) const {
  Shard& sh = shard_for(key);
  std::lock_guard lock(sh.mu);
  size_t s = sh.find_slot(key);
  if (s == kNoSlot) return std::nullopt;
  const Entry& en = sh.slab[sh.index[s]];
  return Pin{en.backend, en.last_slot, en.move};
}

// An entry found idle past ttl counts as already gone: it is dropped (expired) and the
// key is inserted afresh, so a user back after ttl carries no stale last_slot.
void SessionTable::pin(const SessionKey& key, BackendRef backend, uint64_t now_ms, uint8_t move,
                       bool forget_slot) {
  if (backend >= kMaxBackends) return;  // a caller bug; ignore rather than index past pinned_
  Shard& sh = shard_for(key);
  std::lock_guard lock(sh.mu);
  uint64_t ttl = ttl_ms_.load(std::memory_order_relaxed);
  size_t s = sh.find_slot(key);
  if (s != kNoSlot) {
    uint32_t e = sh.index[s];
    Entry& en = sh.slab[e];
    if (idle_ms(en, now_ms) <= ttl) {
      if (en.backend != backend) {
        pinned_[en.backend].fetch_sub(1, std::memory_order_relaxed);
        pinned_[backend].fetch_add(1, std::memory_order_relaxed);
        en.backend = backend;
        en.move = move;
        if (forget_slot) en.last_slot = 0;
        en.epoch = refresh_epoch(now_ms, ttl);  // the move was just written to the store
      }
      en.last_seen_ms = std::max(en.last_seen_ms, now_ms);
      sh.move_to_front(e);
      return;
    }
    sh.expire_at(s, pinned_.get(), expired_.get());
  }
  // A loop, not an if: after set_limits shrank the cap, the shard may be over it.
  size_t cap = max_per_shard_.load(std::memory_order_relaxed);
  while (sh.size >= cap) sh.pop_cold(now_ms, ttl, pinned_.get(), expired_.get());
  // A new user: never moved; its new pin was just claimed in the store (epoch).
  sh.insert(cap, key, backend, now_ms, 0, 0, refresh_epoch(now_ms, ttl), pinned_.get());
}

uint64_t SessionTable::record_slot(const SessionKey& key, uint64_t slot) {
  Shard& sh = shard_for(key);
  std::lock_guard lock(sh.mu);
  size_t s = sh.find_slot(key);
  if (s == kNoSlot) return 0;
  Entry& en = sh.slab[sh.index[s]];
  const uint64_t before = en.last_slot;
  en.last_slot = std::max(en.last_slot, slot);
  return before;
}

bool SessionTable::adopt(const SessionKey& key, BackendRef backend, uint64_t last_slot,
                         uint8_t move, uint64_t now_ms) {
  if (backend >= kMaxBackends) return false;  // a caller bug, as in pin()
  Shard& sh = shard_for(key);
  std::lock_guard lock(sh.mu);
  const uint64_t ttl = ttl_ms_.load(std::memory_order_relaxed);
  const uint16_t epoch = refresh_epoch(now_ms, ttl);
  size_t s = sh.find_slot(key);
  if (s != kNoSlot) {
    uint32_t e = sh.index[s];
    Entry& en = sh.slab[e];
    if (idle_ms(en, now_ms) <= ttl) {
      const bool changed = en.backend != backend;
      if (changed) {
        pinned_[en.backend].fetch_sub(1, std::memory_order_relaxed);
        pinned_[backend].fetch_add(1, std::memory_order_relaxed);
        en.backend = backend;
        en.move = move;
      }
      // Slots only grow along one chain, and the store's last_slot is the fleet's max:
      // keep whichever is higher, as record_slot() would.
      en.last_slot = std::max(en.last_slot, last_slot);
      en.last_seen_ms = std::max(en.last_seen_ms, now_ms);
      en.epoch = epoch;
      sh.move_to_front(e);
      return changed;
    }
    sh.expire_at(s, pinned_.get(), expired_.get());
  }
  size_t cap = max_per_shard_.load(std::memory_order_relaxed);
  while (sh.size >= cap) sh.pop_cold(now_ms, ttl, pinned_.get(), expired_.get());
  sh.insert(cap, key, backend, now_ms, last_slot, move, epoch, pinned_.get());
  return true;
}

bool SessionTable::erase_if(const SessionKey& key, BackendRef backend) {
  Shard& sh = shard_for(key);
  std::lock_guard lock(sh.mu);
  size_t s = sh.find_slot(key);
  if (s == kNoSlot || sh.slab[sh.index[s]].backend != backend) return false;
  sh.remove_at(s, pinned_.get());
  return true;
}

bool SessionTable::erase(const SessionKey& key) {
  Shard& sh = shard_for(key);
  std::lock_guard lock(sh.mu);
  size_t s = sh.find_slot(key);
  if (s == kNoSlot) return false;
  sh.remove_at(s, pinned_.get());
  return true;
}

// Pops from each shard's cold end while the coldest entry is expired or the shard is over
// its cap (a shrink by set_limits); stops at the first live entry within the cap, since
// everything hotter was seen more recently.
size_t SessionTable::sweep(uint64_t now_ms, size_t max_per_shard) {
  uint64_t ttl = ttl_ms_.load(std::memory_order_relaxed);
  size_t cap = max_per_shard_.load(std::memory_order_relaxed);
  size_t removed = 0;
  for (size_t i = 0; i < nshards_; ++i) {
    Shard& sh = shards_[i];
    std::lock_guard lock(sh.mu);
    for (size_t n = 0; n < max_per_shard && sh.tail != kNil; ++n) {
      if (idle_ms(sh.slab[sh.tail], now_ms) <= ttl && sh.size <= cap) break;
      sh.pop_cold(now_ms, ttl, pinned_.get(), expired_.get());
      ++removed;
    }
  }
  return removed;
}

uint64_t SessionTable::pinned(BackendRef backend) const {
  if (backend >= kMaxBackends) return 0;
  return pinned_[backend].load(std::memory_order_relaxed);
}

uint64_t SessionTable::expired(BackendRef backend) const {
  if (backend >= kMaxBackends) return 0;
  return expired_[backend].load(std::memory_order_relaxed);
}

void SessionTable::set_limits(size_t max_sessions, uint64_t ttl_ms) {
  max_per_shard_.store(shard_cap(max_sessions, nshards_), std::memory_order_relaxed);
  ttl_ms_.store(ttl_ms, std::memory_order_relaxed);
}

SessionTableStats SessionTable::stats() const {
  SessionTableStats st;
  for (size_t i = 0; i < nshards_; ++i) {
    const Shard& sh = shards_[i];
    std::lock_guard lock(sh.mu);
    st.size += sh.size;
    st.expired += sh.expired;
    st.evicted += sh.evicted;
  }
  return st;
}

// Visits hot to cold. fn runs under the shard lock, so it must not call back into the
// table (that would self-deadlock on the same shard).
void SessionTable::for_each(
    const std::function<void(const SessionKey&, const Pin&, uint64_t last_seen_ms)>& fn) const {
  for (size_t i = 0; i < nshards_; ++i) {
    const Shard& sh = shards_[i];
    std::lock_guard lock(sh.mu);
    for (uint32_t e = sh.head; e != kNil; e = sh.slab[e].next) {
      const Entry& en = sh.slab[e];
      fn(en.key, Pin{en.backend, en.last_slot, en.move}, en.last_seen_ms);
    }
  }
}

// The real footprint, from the containers' actual sizes rather than a per-entry estimate:
//   - the table object itself and its shard headers (mutex, vectors, list ends; alignas(64)
//     padding included, plus the new[] cookie, padded to the shard alignment);
//   - per shard, the slab's capacity (free and never-used entries too: the slab never
//     shrinks) and the index's capacity, i.e. each session's node plus its share of the
//     index buckets at the current load factor;
//   - the per-backend pinned and expired counters (kMaxBackends of each, allocated up
//     front);
//   - the allocator's own cost: kHeapBlockOverhead bytes for each heap block above.
// Divided by the sessions held, that is what one more idle session costs on average; the
// unit test checks it against what malloc reports for the same table.
SessionMemory SessionTable::memory() const {
  // glibc malloc: an 8-byte chunk header and rounding to 16 (mmapped blocks: 16 bytes,
  // rounded to a page, which is small against the large blocks that are mmapped).
  constexpr size_t kHeapBlockOverhead = 16;
  SessionMemory m;
  m.bytes = sizeof(SessionTable) + nshards_ * sizeof(Shard) + alignof(Shard) + kHeapBlockOverhead +
            2 * (kMaxBackends * sizeof(std::atomic<uint64_t>) + kHeapBlockOverhead);
  for (size_t i = 0; i < nshards_; ++i) {
    const Shard& sh = shards_[i];
    std::lock_guard lock(sh.mu);
    m.bytes += sh.bytes();
    if (sh.slab.capacity() != 0) m.bytes += kHeapBlockOverhead;
    if (sh.index.capacity() != 0) m.bytes += kHeapBlockOverhead;
    m.sessions += sh.size;
  }
  return m;
}

size_t SessionTable::bytes_per_session() const {
  SessionMemory m = memory();
  if (m.sessions == 0) return 0;
  return static_cast<size_t>((m.bytes + m.sessions - 1) / m.sessions);
}

}  // namespace lb
