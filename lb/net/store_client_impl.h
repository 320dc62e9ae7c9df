#pragma once
// StoreClient's insides (lb/net/store_client.h), shared by store_client.cpp (link, claim,
// cas, parking) and store_client_ops.cpp (TTL refresh batches, shared quota). Private to
// those two files.
#include <hiredis/hiredis.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lb/core/pending_writes.h"
#include "lb/core/refresh_batch.h"
#include "lb/net/redis_link.h"
#include "lb/net/runtime.h"
#include "lb/net/store_client.h"
#include "lb/net/store_ops.h"

namespace lb::net {

struct StoreClient::Impl {
  Impl(uv_loop_t* loop, ProxyState& state);
  ~Impl();

  // One claim or cas a waiter is parked on.
  struct Parked {
    Ticket ticket = 0;
    uint64_t seq = 0;  // tells this operation from an earlier one of the same waiter
    bool cas = false;
    SessionKey key;
    PendingWrite write;  // queued when no usable answer comes
    uint64_t sent_us = 0;
  };
  // An answer to give from the defer timer (the link was closed or replaced under a
  // parked waiter: answering at once could be inside the caller's configure()).
  struct Deferred {
    StoreWaiter* w;
    StoreAnswer a;
  };

  bool up() const { return link && link->state() == LinkState::up; }
  // Makes the link (counted in StoreShared::worker_links) or drops it.
  void make_link();
  void drop_link();
  void count_up(bool up);  // StoreShared::worker_links_up follows this link's state
  // Parks w on one pin_claim or pin_cas (`cas`: which; the arguments from store_ops.h);
  // false when nothing could be sent. `write` is what fall_back() queues.
  bool park(StoreWaiter* w, bool cas, const SessionKey& key, PendingWrite write,
            const std::vector<std::string_view>& keys, const std::vector<std::string_view>& args);
  void answered(StoreWaiter* w, uint64_t seq, LinkResult r, const redisReply* reply);
  // The write goes to PendingWrites; the answer tells the waiter to decide locally.
  StoreAnswer fall_back(const Parked& p, const char* why);
  // Fire-and-forget pin_cas (a claim that found a value nobody can use).
  void send_cas(const SessionKey& key, std::string_view expected, const std::string& value,
                std::string_view to);
  void cancel(StoreWaiter* w);
  // Every parked waiter and quota take of the current link ends now ("down"): before the
  // link is replaced or closed, whose callbacks would otherwise run inside configure() or
  // never.
  void retire();
  void defer(StoreWaiter* w, StoreAnswer a);
  static void on_defer(uv_timer_t* t);

  // store_client_ops.cpp
  void add_refresh(const RefreshItem& item);
  void flush_refresh();
  static void on_refresh_timer(uv_timer_t* t);
  void refreshed(const RefreshItem& item, const std::string& pool, LinkResult r,
                 const redisReply* reply);
  bool take_quota(const std::string& pool, QuotaGuard& guard);
  void quota_answer(uint64_t id, LinkResult r, const redisReply* reply);
  void cool_quota(const std::string& pool, int status, uint64_t until_unix_ms);
  uint64_t refresh_every_ms() const;
  // Counts a reply that is not one: timeout, lost link or a Redis error.
  void count_failure(LinkResult r);

  uv_loop_t* loop;
  ProxyState& state;
  std::unique_ptr<RedisLink> link;  // null: no store configured
  bool counted_up = false;
  std::optional<RuntimeStore> addr;
  std::string prefix = "corral:";
  uint64_t timeout_ms = 50;
  uint64_t ttl_ms = 3'600'000;
  uint64_t sync_interval_ms = 2000;
  std::string ttl_text = "3600000";

  uint64_t seq = 0;
  std::unordered_map<StoreWaiter*, Parked> parked;
  std::vector<Deferred> deferred;
  uv_timer_t* defer_timer;  // heap: freed in its close callback

  RefreshBatch batch;
  uv_timer_t* refresh_timer;  // heap, as defer_timer
  struct Take {
    Ticket ticket = 0;
    QuotaGuard* guard = nullptr;  // the Registry's: lives as long as the process
  };
  std::unordered_map<uint64_t, Take> takes;  // quota_take in flight, by seq
};

// Reply helpers: the scripts answer arrays of integers and bulk strings.
inline bool reply_int(const redisReply* r, size_t i, long long* out) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return false;
  const redisReply* e = r->element[i];
  if (e->type != REDIS_REPLY_INTEGER) return false;
  *out = e->integer;
  return true;
}
inline bool reply_str(const redisReply* r, size_t i, std::string_view* out) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return false;
  const redisReply* e = r->element[i];
  if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS) return false;
  *out = std::string_view(e->str, e->len);
  return true;
}

}  // namespace lb::net
