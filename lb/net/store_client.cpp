// The worker's store client: its RedisLink, and the claims and CASes that requests park on
// (plan-15 §2-§3). TTL refreshes and the shared quota are in store_client_ops.cpp.
#include "lb/net/store_client.h"

#include <algorithm>
#include <utility>

#include "lb/core/pin_codec.h"
#include "lb/core/quota_guard.h"
#include "lb/net/proxy_state.h"
#include "lb/net/store_client_impl.h"

namespace lb::net {

namespace {

uint64_t now_us() { return uv_hrtime() / 1000; }

void close_timer(uv_timer_t* t) {
  uv_timer_stop(t);
  t->data = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(t),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

uv_timer_t* make_timer(uv_loop_t* loop, void* data) {
  auto* t = new uv_timer_t;
  uv_timer_init(loop, t);
  t->data = data;
  return t;
}

}  // namespace

StoreClient::Impl::Impl(uv_loop_t* l, ProxyState& s)
    : loop(l), state(s), defer_timer(make_timer(l, this)), refresh_timer(make_timer(l, this)) {}

StoreClient::Impl::~Impl() {
  // The link first: no reply callback runs once its destruction begins. Deferred answers
  // are dropped (no waiter is called after ~StoreClient starts); a quota take in flight is
  // released so the guard may ask again.
  drop_link();
  for (auto& [id, take] : takes) take.guard->lease_failed();
  takes.clear();
  parked.clear();
  deferred.clear();
  close_timer(defer_timer);
  close_timer(refresh_timer);
}

bool StoreClient::Impl::park(StoreWaiter* w, bool cas, const SessionKey& key, PendingWrite write,
                             const std::vector<std::string_view>& keys,
                             const std::vector<std::string_view>& args) {
  if (!up()) return false;
  cancel(w);  // one operation per waiter
  uint64_t s = ++seq;
  Ticket t = link->evalsha(
      cas ? StoreScript::pin_cas : StoreScript::pin_claim, keys, args,
      [this, w, s](LinkResult r, const redisReply* reply) { answered(w, s, r, reply); },
      timeout_ms);
  if (t == 0) return false;
  // RedisLink never calls back inside evalsha(), so parking after the send is safe.
  parked[w] = Parked{t, s, cas, key, std::move(write), now_us()};
  return true;
}

void StoreClient::Impl::count_failure(LinkResult r) {
  if (r == LinkResult::timeout)
    state.store.counters.timeouts.fetch_add(1, std::memory_order_relaxed);
  else
    state.store.counters.errors.fetch_add(1, std::memory_order_relaxed);
}

StoreAnswer StoreClient::Impl::fall_back(const Parked& p, const char* why) {
  state.store.pending.push(p.write);
  state.store.counters.local_fallbacks.fetch_add(1, std::memory_order_relaxed);
  StoreAnswer a;
  a.outcome = StoreOutcome::failed;
  a.why = why;
  return a;
}

void StoreClient::Impl::answered(StoreWaiter* w, uint64_t s, LinkResult r,
                                 const redisReply* reply) {
  auto it = parked.find(w);
  if (it == parked.end() || it->second.seq != s) return;  // cancelled meanwhile
  Parked p = std::move(it->second);
  parked.erase(it);
  StoreCounters& c = state.store.counters;
  c.roundtrip.observe(now_us() - p.sent_us);

  long long won = -1;
  std::string_view stored;
  StoreAnswer a;
  if (r != LinkResult::reply) {
    count_failure(r);
    a = fall_back(p, r == LinkResult::timeout ? "timeout" : "down");
  } else if (!reply_int(reply, 0, &won) || !reply_str(reply, 1, &stored)) {
    // A Redis error (NOSCRIPT after a failover, OOM, ...) or a reply of another shape.
    count_failure(r);
    a = fall_back(p, "error");
  } else if (won == 1) {
    a.outcome = StoreOutcome::won;
    if (p.cas) {
      c.cas_won.fetch_add(1, std::memory_order_relaxed);
      c.invalidations_out.fetch_add(1, std::memory_order_relaxed);
    } else {
      c.claims_won.fetch_add(1, std::memory_order_relaxed);
    }
  } else if (std::optional<StoredPin> pin = decode_pin(stored)) {
    a.outcome = StoreOutcome::adopted;
    a.stored = std::move(*pin);
    (p.cas ? c.cas_lost : c.claims_adopted).fetch_add(1, std::memory_order_relaxed);
  } else if (!p.cas) {
    // A value nobody can use (garbled, another version): we keep our placement and write
    // it over that value with pin_cas, which treats such a value as missing.
    std::optional<StoredPin> mine = decode_pin(p.write.value);
    send_cas(p.key, "", p.write.value, mine ? std::string_view(mine->backend) : "");
    a.outcome = StoreOutcome::won;
    c.claims_won.fetch_add(1, std::memory_order_relaxed);
  } else {
    // pin_cas kept a v1 value we cannot decode (a newer corral's reason, say): decide
    // locally; the flush retries the move.
    count_failure(r);
    a = fall_back(p, "error");
  }
  w->store_answer(a);
}

void StoreClient::Impl::send_cas(const SessionKey& key, std::string_view expected,
                                 const std::string& value, std::string_view to) {
  if (!up()) return;
  CasArgs a = cas_args(prefix, key, std::string(expected), value, to, state.store.instance, ttl_ms);
  link->evalsha(
      StoreScript::pin_cas, a.keys(), a.args(),
      [this](LinkResult r, const redisReply* reply) {
        long long won = -1;
        if (r != LinkResult::reply || !reply_int(reply, 0, &won)) count_failure(r);
      },
      timeout_ms);
}

void StoreClient::Impl::cancel(StoreWaiter* w) {
  if (auto it = parked.find(w); it != parked.end()) {
    if (link) link->cancel(it->second.ticket);
    parked.erase(it);
  }
  std::erase_if(deferred, [w](const Deferred& d) { return d.w == w; });
}

void StoreClient::Impl::retire() {
  for (auto& [w, p] : parked) {
    if (link) link->cancel(p.ticket);
    state.store.counters.errors.fetch_add(1, std::memory_order_relaxed);
    defer(w, fall_back(p, "down"));
  }
  parked.clear();
  for (auto& [id, take] : takes) {
    if (link) link->cancel(take.ticket);
    take.guard->lease_failed();
  }
  takes.clear();
}

void StoreClient::Impl::defer(StoreWaiter* w, StoreAnswer a) {
  deferred.push_back(Deferred{w, a});
  uv_timer_start(defer_timer, on_defer, 0, 0);
}

void StoreClient::Impl::on_defer(uv_timer_t* t) {
  auto* self = static_cast<Impl*>(t->data);
  if (self == nullptr) return;
  // One at a time from the front: an answer may cancel (and free) another waiter still in
  // the list, or park again.
  while (!self->deferred.empty()) {
    Deferred d = self->deferred.front();
    self->deferred.erase(self->deferred.begin());
    d.w->store_answer(d.a);
  }
}

StoreClient::StoreClient(uv_loop_t* loop, ProxyState& state)
    : impl_(std::make_unique<Impl>(loop, state)) {}

StoreClient::~StoreClient() = default;

void StoreClient::configure(const Runtime& rt) {
  Impl& m = *impl_;
  if (!rt.store || !rt.config.sticky.store) {
    if (m.link) {
      m.retire();
      m.drop_link();
    }
    m.addr.reset();
    m.batch.take(uv_now(m.loop));
    uv_timer_stop(m.refresh_timer);
    return;
  }
  const config::StickyStore& s = *rt.config.sticky.store;
  m.prefix = s.prefix;
  m.timeout_ms = std::max<uint64_t>(s.timeout_ms, 1);
  m.sync_interval_ms = s.sync_interval_ms;
  m.ttl_ms = rt.config.sticky.ttl_ms;
  m.ttl_text = std::to_string(m.ttl_ms);
  if (m.link && m.addr == rt.store) {  // same server: the link stays, with the new timeout
    m.link->set_timeout(m.timeout_ms);
    return;
  }
  if (m.link) {
    m.retire();
  } else {
    m.make_link();
  }
  m.addr = rt.store;
  RedisLinkOptions o;
  o.ip = rt.store->ip;
  o.port = rt.store->port;
  o.password = rt.store->password;
  o.timeout_ms = m.timeout_ms;
  m.link->connect(std::move(o));
}

bool StoreClient::up() const { return impl_->up(); }

void StoreClient::Impl::make_link() {
  link = std::make_unique<RedisLink>(loop);
  link->set_scripts(store_script_bodies());
  link->on_state([this](LinkState s) { count_up(s == LinkState::up); });
  state.store.worker_links.fetch_add(1, std::memory_order_relaxed);
}

void StoreClient::Impl::drop_link() {
  if (!link) return;
  count_up(false);
  link.reset();
  state.store.worker_links.fetch_sub(1, std::memory_order_relaxed);
}

void StoreClient::Impl::count_up(bool up) {
  if (up == counted_up) return;
  counted_up = up;
  if (up)
    state.store.worker_links_up.fetch_add(1, std::memory_order_relaxed);
  else
    state.store.worker_links_up.fetch_sub(1, std::memory_order_relaxed);
}

bool StoreClient::claim(const SessionKey& key, const StoredPin& mine, StoreWaiter* w) {
  Impl& m = *impl_;
  if (!m.up()) return false;
  ClaimArgs a =
      claim_args(m.prefix, key, encode_pin(mine.backend, mine.last_slot, mine.reason), m.ttl_ms);
  return m.park(w, false, key, PendingWrite{a.key, "", a.value}, a.keys(), a.args());
}

bool StoreClient::cas(const SessionKey& key, std::string_view expected_backend,
                      const StoredPin& mine, StoreWaiter* w) {
  Impl& m = *impl_;
  if (!m.up()) return false;
  CasArgs a = cas_args(m.prefix, key, std::string(expected_backend),
                       encode_pin(mine.backend, mine.last_slot, mine.reason), mine.backend,
                       m.state.store.instance, m.ttl_ms);
  return m.park(w, true, key, PendingWrite{a.key, a.expected, a.value}, a.keys(), a.args());
}

void StoreClient::cancel(StoreWaiter* w) { impl_->cancel(w); }

void StoreClient::queue_claim(const SessionKey& key, const StoredPin& mine) {
  Impl& m = *impl_;
  m.state.store.pending.push(PendingWrite{pin_key_text(m.prefix, key), "",
                                          encode_pin(mine.backend, mine.last_slot, mine.reason)});
  m.state.store.counters.local_fallbacks.fetch_add(1, std::memory_order_relaxed);
}

void StoreClient::queue_cas(const SessionKey& key, std::string_view expected_backend,
                            const StoredPin& mine) {
  Impl& m = *impl_;
  m.state.store.pending.push(PendingWrite{pin_key_text(m.prefix, key),
                                          std::string(expected_backend),
                                          encode_pin(mine.backend, mine.last_slot, mine.reason)});
  m.state.store.counters.local_fallbacks.fetch_add(1, std::memory_order_relaxed);
}

void StoreClient::note_refresh(const RefreshItem& item) { impl_->add_refresh(item); }

bool StoreClient::quota_take(const std::string& pool, QuotaGuard& guard) {
  return impl_->take_quota(pool, guard);
}

void StoreClient::quota_cool(const std::string& pool, int status, uint64_t until_unix_ms) {
  impl_->cool_quota(pool, status, until_unix_ms);
}

}  // namespace lb::net
