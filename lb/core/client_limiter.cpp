// The per-client token buckets (see client_limiter.h for the contract).
//
// Each shard is a slab of fixed-size entries threaded into an intrusive LRU list by 32-bit
// indices, and an open-addressing index (linear probing with backward-shift deletion,
// Knuth TAOCP vol. 3, 6.4, Algorithms L and R), sized once for the shard's cap at load
// factor <= 0.5. Nothing is allocated per request once a shard has met its clients; the
// slab grows to the cap and then recycles its coldest entry.
#include "lb/core/client_limiter.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <vector>

namespace lb {
namespace {

constexpr uint32_t kNil = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kFib = 0x9E3779B97F4A7C15ull;  // 2^64 / golden ratio (Fibonacci hashing)
// Folded into the route's salt for per-IP buckets, so an IP bucket is never the same
// entry as the key bucket of a client keyed by that IP.
constexpr uint64_t kIpSalt = 0x6970'6275'636b'6574ull;

struct Entry {
  SessionKey key;
  double tokens = 0;
  uint64_t last_ms = 0;
  uint32_t prev = kNil;  // towards the hot end
  uint32_t next = kNil;  // towards the cold end
};

// Refills `e` to now_ms (never backwards: workers' cached clocks differ by a few ms).
void refill(Entry& e, double rate, double cap, uint64_t now_ms) {
  if (now_ms > e.last_ms) {
    e.tokens = std::min(cap, e.tokens + static_cast<double>(now_ms - e.last_ms) * rate / 1000.0);
    e.last_ms = now_ms;
  }
  e.tokens = std::min(e.tokens, cap);  // a reload may have lowered the cap
}

// Whole seconds until `e` holds one token again, at least 1 (Retry-After has 1 s grain).
uint32_t wait_s(const Entry& e, double rate) {
  double s = std::ceil((1.0 - e.tokens) / rate);
  return static_cast<uint32_t>(std::clamp(s, 1.0, 86'400.0));
}

}  // namespace

struct alignas(64) ClientLimiter::Shard {
  std::mutex mu;
  std::vector<Entry> slab;
  std::vector<uint32_t> index;  // entry numbers, kNil = empty; allocated at first use
  unsigned index_bits = 0;
  size_t cap = 2;
  uint32_t head = kNil;  // most recently seen
  uint32_t tail = kNil;  // least recently seen
  uint64_t evicted = 0;

  size_t home(const SessionKey& k) const {
    return static_cast<size_t>(((k.lo ^ std::rotl(k.hi, 29)) * kFib) >> (64 - index_bits));
  }
  size_t mask() const { return index.size() - 1; }

  void unlink(uint32_t i) {
    Entry& e = slab[i];
    (e.prev == kNil ? head : slab[e.prev].next) = e.next;
    (e.next == kNil ? tail : slab[e.next].prev) = e.prev;
    e.prev = e.next = kNil;
  }
  void push_front(uint32_t i) {
    slab[i].prev = kNil;
    slab[i].next = head;
    if (head != kNil) slab[head].prev = i;
    head = i;
    if (tail == kNil) tail = i;
  }

  // Removes the index slot `s` and shifts later members of its probe run back (Algorithm
  // R), so lookups can stop at the first empty slot.
  void erase_slot(size_t s) {
    size_t i = s;
    for (;;) {
      index[i] = kNil;
      size_t j = i;
      for (;;) {
        j = (j + 1) & mask();
        if (index[j] == kNil) return;
        size_t h = home(slab[index[j]].key);
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) break;
      }
      index[i] = index[j];
      i = j;
    }
  }

  // The entry number of `key`, made (full, at `cap0` tokens) if absent, moved to the hot
  // end. A number, not a reference: a later touch may grow the slab.
  uint32_t touch(const SessionKey& key, double cap0, uint64_t now_ms) {
    if (index.empty()) {
      index_bits = std::max(4u, static_cast<unsigned>(std::bit_width(cap * 2 - 1)));
      index.assign(size_t{1} << index_bits, kNil);
    }
    size_t s = home(key);
    for (; index[s] != kNil; s = (s + 1) & mask()) {
      uint32_t i = index[s];
      if (slab[i].key == key) {
        unlink(i);
        push_front(i);
        return i;
      }
    }
    uint32_t i;
    if (slab.size() < cap) {
      i = static_cast<uint32_t>(slab.size());
      slab.emplace_back();
    } else {
      // Full: recycle the coldest entry. Its removal may shift the run `s` lies in, so
      // the free slot is looked up again.
      i = tail;
      size_t t = home(slab[i].key);
      while (index[t] != i) t = (t + 1) & mask();
      erase_slot(t);
      unlink(i);
      ++evicted;
      s = home(key);
      while (index[s] != kNil) s = (s + 1) & mask();
    }
    slab[i] = Entry{key, cap0, now_ms, kNil, kNil};
    index[s] = i;
    push_front(i);
    return i;
  }
};

ClientLimiter::ClientLimiter(size_t max_entries, size_t shards)
    : shards_(new Shard[std::max<size_t>(shards, 1)]),
      nshards_(std::max<size_t>(shards, 1)),
      max_entries_(max_entries) {
  // Two per shard at least: one request touches up to two buckets, and the second must
  // not evict the first.
  size_t cap = std::max<size_t>(2, (max_entries + nshards_ - 1) / nshards_);
  for (size_t i = 0; i < nshards_; ++i) shards_[i].cap = cap;
}

ClientLimiter::~ClientLimiter() = default;

ClientLimiter::Shard& ClientLimiter::shard_for(const SessionKey& k) const {
  return shards_[static_cast<size_t>((k.hi * kFib) >> 32) % nshards_];
}

LimitVerdict ClientLimiter::admit(uint64_t route, SessionKey client, SessionKey ip,
                                  const ClientLimit& limit, uint64_t now_ms) {
  if (!limit.enabled()) return {};
  const bool per_ip = limit.per_ip_rps > 0;
  const SessionKey ck = pool_session_key(client, route);
  const SessionKey ik = per_ip ? pool_session_key(ip, route ^ kIpSalt) : SessionKey{};
  Shard& a = shard_for(ck);
  Shard& b = per_ip ? shard_for(ik) : a;
  // Both buckets are decided under their locks together, so a refusal by one never
  // spends the other's token; std::scoped_lock orders two mutexes without deadlock.
  std::unique_lock<std::mutex> one;
  std::optional<std::scoped_lock<std::mutex, std::mutex>> both;
  if (&a == &b)
    one = std::unique_lock(a.mu);
  else
    both.emplace(a.mu, b.mu);
  const double cap = std::max(1.0, limit.burst);
  const double ip_cap = std::max(cap, limit.per_ip_rps);
  const uint32_t ci = a.touch(ck, cap, now_ms);
  // Never evicts ci: it is at the hot end of its shard, which holds two entries at least.
  const uint32_t ii = per_ip ? b.touch(ik, ip_cap, now_ms) : kNil;
  Entry& ce = a.slab[ci];
  refill(ce, limit.rps, cap, now_ms);
  Entry* ie = per_ip ? &b.slab[ii] : nullptr;
  if (ie) refill(*ie, limit.per_ip_rps, ip_cap, now_ms);
  if (ce.tokens < 1.0) return {false, false, wait_s(ce, limit.rps)};
  if (ie && ie->tokens < 1.0) return {false, true, wait_s(*ie, limit.per_ip_rps)};
  ce.tokens -= 1.0;
  if (ie) ie->tokens -= 1.0;
  return {};
}

size_t ClientLimiter::size() const {
  size_t n = 0;
  for (size_t i = 0; i < nshards_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].slab.size();
  }
  return n;
}

uint64_t ClientLimiter::evicted() const {
  uint64_t n = 0;
  for (size_t i = 0; i < nshards_; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].evicted;
  }
  return n;
}

}  // namespace lb
