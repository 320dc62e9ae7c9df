#include "lb/core/response_cache.h"

#include <algorithm>
#include <utility>

namespace lb {

ResponseCache::ResponseCache(uint64_t max_bytes) : max_bytes_(max_bytes) {
  for (Shard& s : shards_) s.budget = max_bytes / kShards;
}

ResponseCache::~ResponseCache() = default;

// Puts n at the most recently used end.
void ResponseCache::link_front(Shard& s, Node* n) {
  n->prev = nullptr;
  n->next = s.head;
  if (s.head) s.head->prev = n;
  s.head = n;
  if (!s.tail) s.tail = n;
}

// Takes n out of the list (it stays in the map).
void ResponseCache::unlink(Shard& s, Node* n) {
  if (n->prev)
    n->prev->next = n->next;
  else
    s.head = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    s.tail = n->prev;
  n->prev = n->next = nullptr;
}

// Removes n from list, byte count and map; n is freed (a reader's shared_ptr keeps the value).
void ResponseCache::erase(Shard& s, Node* n) {
  unlink(s, n);
  s.bytes -= n->charge;
  const CacheKey key = n->key;  // a copy: erasing by a reference into the node it frees
  s.map.erase(key);
}

// Drops least recently used entries until the shard is within budget, never `keep` (the entry
// just stored, which fits on its own).
void ResponseCache::evict_to_budget(Shard& s, const Node* keep) {
  while (s.bytes > s.budget && s.tail && s.tail != keep) {
    erase(s, s.tail);
    ++s.evictions;
  }
}

std::shared_ptr<const CachedAnswer> ResponseCache::get(const CacheKey& key,
                                                       std::string_view canonical,
                                                       uint64_t now_ms) {
  Shard& s = shards_[shard_of(key)];
  std::lock_guard lock(s.mu);
  auto it = s.map.find(key);
  if (it == s.map.end() || it->second.value->key != canonical) {
    ++s.misses;
    return nullptr;
  }
  Node* n = &it->second;
  if (n->value->expires_ms != 0 && now_ms >= n->value->expires_ms) {
    erase(s, n);
    ++s.expired;
    ++s.misses;
    return nullptr;
  }
  if (s.head != n) {
    unlink(s, n);
    link_front(s, n);
  }
  ++s.hits;
  return n->value;  // the copy is made under the lock; the body is written without it
}

PutResult ResponseCache::put(const CacheKey& key, std::shared_ptr<const CachedAnswer> answer,
                             uint64_t generation) {
  if (!answer) return PutResult::too_large;
  const uint64_t charge = std::max<uint64_t>(answer->charge, answer_charge(*answer));
  Shard& s = shards_[shard_of(key)];
  std::lock_guard lock(s.mu);
  // Read under the shard lock: purge() bumps the generation before it takes this lock, so
  // either we see the bump and refuse, or we store first and the purge then drops the entry.
  if (generation != generation_.load(std::memory_order_acquire)) return PutResult::stale;
  if (charge > s.budget) return PutResult::too_large;
  auto [it, fresh] = s.map.try_emplace(key);
  Node* n = &it->second;
  if (fresh) {
    n->key = key;
  } else {
    unlink(s, n);
    s.bytes -= n->charge;
  }
  n->value = std::move(answer);
  n->charge = charge;
  s.bytes += charge;
  link_front(s, n);
  ++s.inserts;
  evict_to_budget(s, n);
  return fresh ? PutResult::stored : PutResult::replaced;
}

PurgeResult ResponseCache::purge(std::string_view prefix) {
  generation_.fetch_add(1, std::memory_order_acq_rel);
  PurgeResult out;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (Node* n = s.head; n;) {
      Node* next = n->next;
      if (std::string_view(n->value->key).starts_with(prefix)) {
        ++out.entries;
        out.bytes += n->charge;
        ++s.purged;
        erase(s, n);
      }
      n = next;
    }
  }
  return out;
}

void ResponseCache::set_max_bytes(uint64_t max_bytes) {
  max_bytes_.store(max_bytes, std::memory_order_relaxed);
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    s.budget = max_bytes / kShards;
    evict_to_budget(s, nullptr);
  }
}

ResponseCacheStats ResponseCache::stats() const {
  ResponseCacheStats out;
  out.max_bytes = max_bytes_.load(std::memory_order_relaxed);
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    out.entries += s.map.size();
    out.bytes += s.bytes;
    out.hits += s.hits;
    out.misses += s.misses;
    out.inserts += s.inserts;
    out.evictions += s.evictions;
    out.purged += s.purged;
    out.expired += s.expired;
  }
  return out;
}

}  // namespace lb
