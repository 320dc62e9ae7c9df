#include "lb/net/store_control.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lb/core/pin_codec.h"
#include "lb/core/store_messages.h"
#include "lb/net/log.h"
#include "lb/net/proxy_state.h"
#include "lb/net/redis_link.h"
#include "lb/net/runtime.h"
#include "lb/net/store_ops.h"
#include "lb/net/wall_clock.h"

namespace lb::net {
namespace {

// Pending writes sent per pipelined flush batch (plan-15 section 2.6).
constexpr size_t kFlushBatch = 256;
// The control link waits longer than a request would: nobody is parked on it, and a slow
// fleet_sync over many instances must not count as an outage.
constexpr uint64_t kMinControlTimeoutMs = 200;

// "<hostname>:<pid>:<8 hex random>": unique per process, so a restart is a new instance
// whose predecessor's counts simply expire.
std::string make_instance_id() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    std::snprintf(host, sizeof host, "unknown");
  std::random_device rd;
  char tail[48];
  std::snprintf(tail, sizeof tail, ":%d:%08x", static_cast<int>(getpid()),
                static_cast<unsigned>(rd()));
  return std::string(host) + tail;
}

// A reply element as text: strings as they are, integers in decimal (nullopt otherwise).
std::optional<std::string> element_text(const redisReply* e) {
  if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
    return std::string(e->str, e->len);
  if (e->type == REDIS_REPLY_INTEGER) return std::to_string(e->integer);
  return std::nullopt;
}

}  // namespace

struct StoreControl::Impl {
  struct Backend {
    std::string name;
    BackendRef ref;
  };
  struct Pool {
    std::string name;
    std::vector<Backend> backends;
  };
  struct Batch {  // one pipelined flush
    std::vector<PendingWrite> writes;
    std::vector<PendingWrite> failed;
    size_t left = 0;
  };

  Impl(uv_loop_t* l, ProxyState& s) : loop(l), state(s), timer(new uv_timer_t) {
    uv_timer_init(loop, timer);
    timer->data = this;
  }
  ~Impl() {
    cmd.reset();  // no link callback runs once its destruction begins
    sub.reset();
    uv_timer_stop(timer);
    timer->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }

  void configure(const Runtime& rt);
  void close();
  void on_state(LinkState s);
  void on_tick();
  void sync();
  void on_sync(LinkResult r, const redisReply* reply);
  void flush();
  void on_flushed(Batch& b, size_t i, LinkResult r, const redisReply* reply);
  void finish_batch(Batch& b);
  void adopt(const PendingWrite& w, const StoredPin& stored);
  std::optional<BackendRef> resolve(const SessionKey& key, const std::string& stored,
                                    const std::string& own) const;
  // The pool a backend configured now belongs to (names are unique across pools).
  static std::optional<std::string_view> pool_of(const Runtime& rt, std::string_view backend);
  void on_message(std::string_view channel, std::string_view msg);
  void on_pin_moved(std::string_view msg);
  void on_quota_cooled(std::string_view msg);
  void set_quota_shared(bool shared);
  uint64_t now() const { return uv_now(loop); }

  uv_loop_t* loop;
  ProxyState& state;
  uv_timer_t* timer;  // heap: freed in its close callback
  std::unique_ptr<RedisLink> cmd;
  std::unique_ptr<RedisLink> sub;
  std::optional<RuntimeStore> addr;
  config::StickyStore cfg;
  uint64_t ttl_ms = 0;
  std::vector<Pool> pools;
  std::string sub_prefix;  // the prefix the subscriber link's channels were made from
  bool syncing = false;
  bool flushing = false;
  bool up = false;           // the command link's last state
  bool down_logged = false;  // the current outage was logged
  uint64_t down_since = 0;   // uv_now when the current outage began (0: none)
  bool fleet_stale = false;  // the others' counts were cleared in this outage
};

StoreControl::StoreControl(uv_loop_t* loop, ProxyState& state)
    : impl_(std::make_unique<Impl>(loop, state)) {}
StoreControl::~StoreControl() = default;
void StoreControl::configure(const Runtime& rt) { impl_->configure(rt); }
bool StoreControl::subscribed() const { return impl_->sub && impl_->sub->subscribed() >= 2; }

void StoreControl::Impl::configure(const Runtime& rt) {
  StoreShared& store = state.store;
  // Made at the first configure, store or not, so it is written before any worker runs.
  if (store.instance.empty()) store.instance = make_instance_id();
  if (!rt.store || !rt.config.sticky.store) return close();
  cfg = *rt.config.sticky.store;
  ttl_ms = rt.config.sticky.ttl_ms;
  pools.clear();
  for (const RuntimePool& p : rt.pools) {
    Pool& out = pools.emplace_back(Pool{p.name, {}});
    for (const RuntimeBackend& b : p.backends) out.backends.push_back({b.name, b.ref});
  }
  store.pending.set_max_pending(cfg.max_pending);

  RedisLinkOptions o;
  o.ip = rt.store->ip;
  o.port = rt.store->port;
  o.password = rt.store->password;
  o.timeout_ms = std::max(cfg.timeout_ms, kMinControlTimeoutMs);
  const bool moved = !addr || *addr != *rt.store;
  if (!cmd) {
    cmd = std::make_unique<RedisLink>(loop);
    cmd->set_scripts(store_script_bodies());
    cmd->on_state([this](LinkState s) { on_state(s); });
  }
  // A reload that changes only sticky.store.timeout keeps the connections; their stuck
  // detection and default deadline follow the new value.
  cmd->set_timeout(o.timeout_ms);
  if (moved && !cmd->connect(o)) {
    state.store.set_error(cmd->last_error());
    logf(LogLevel::error, "shared store %s: %s", cfg.redis.c_str(), cmd->last_error().c_str());
  }
  // A new prefix means new channels: the subscriber connects again (hiredis 0.14 cannot
  // swap subscriptions safely on a live connection).
  if (!sub) {
    sub = std::make_unique<RedisLink>(loop);
    sub->on_state([this](LinkState s) { state.store.sub_state.store(static_cast<uint8_t>(s)); });
  }
  sub->set_timeout(o.timeout_ms);
  if (moved || sub_prefix != cfg.prefix) {
    sub_prefix = cfg.prefix;
    sub->subscribe(
        {cfg.prefix + "pins", cfg.prefix + "quota"},
        [this](std::string_view channel, std::string_view msg) { on_message(channel, msg); });
    sub->connect(o);
  }
  addr = rt.store;
  const uint64_t every = std::max<uint64_t>(cfg.sync_interval_ms, 1);
  uv_timer_start(
      timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->on_tick(); }, every, every);
}

// No store configured (any more): nothing is shared, every guard limits alone.
void StoreControl::Impl::close() {
  const bool had = cmd != nullptr;
  cmd.reset();
  sub.reset();
  addr.reset();
  sub_prefix.clear();
  uv_timer_stop(timer);
  syncing = flushing = false;
  up = down_logged = fleet_stale = false;
  down_since = 0;
  state.store.fleet.clear();
  state.store.fleet.set_live_instances(1);
  state.store.state.store(static_cast<uint8_t>(LinkState::down));
  state.store.sub_state.store(static_cast<uint8_t>(LinkState::down));
  if (had) {
    state.store.since_unix_ms.store(wall_ms());
    logf(LogLevel::info, "shared store removed: pins stay local to this instance");
  }
  state.registry.for_each_quota([](const std::string&, QuotaGuard& g) {
    g.set_shared(false);
    g.set_fallback_divisor(1);
  });
}

void StoreControl::Impl::set_quota_shared(bool shared) {
  const uint64_t live = state.store.fleet.live_instances();
  state.registry.for_each_quota([&](const std::string&, QuotaGuard& g) {
    g.set_shared(shared);
    if (!shared) g.set_fallback_divisor(live);
  });
}

// The command link's state is the store's. Logged once per outage (a reconnecting link
// alternates connecting/down at the back-off's pace), never with the password.
void StoreControl::Impl::on_state(LinkState s) {
  state.store.state.store(static_cast<uint8_t>(s));
  state.store.since_unix_ms.store(wall_ms());
  if (s == LinkState::up) {
    if (down_logged)
      logf(LogLevel::info, "shared store %s: up again after %llu ms; flushing %zu pending writes",
           cfg.redis.c_str(), static_cast<unsigned long long>(now() - down_since),
           state.store.pending.size());
    up = true;
    down_logged = fleet_stale = false;
    down_since = 0;
    set_quota_shared(true);
    sync();
    flush();
    return;
  }
  if (down_since == 0) down_since = now();
  if (up) {
    up = false;
    syncing = flushing = false;  // their callbacks fail with the link
    set_quota_shared(false);
  }
  if (s == LinkState::down) {
    state.store.set_error(cmd->last_error());
    if (!down_logged) {
      down_logged = true;
      set_quota_shared(false);  // also when it never came up: the last known fleet size
      logf(LogLevel::warn,
           "shared store %s: down (%s); pins stay local and writes are queued until it is back",
           cfg.redis.c_str(), cmd->last_error().c_str());
    }
  }
}

void StoreControl::Impl::on_tick() {
  if (!up) {
    // The others' counts age: past three sync intervals they may belong to stopped
    // instances, so bounded loads go back to local counts alone.
    if (down_since != 0 && !fleet_stale && now() - down_since >= 3 * cfg.sync_interval_ms) {
      fleet_stale = true;
      state.store.fleet.clear();
    }
    return;
  }
  sync();
  flush();
}

// fleet_sync: our counts out, the other live instances' counts back (store_scripts.h).
void StoreControl::Impl::sync() {
  if (syncing || !cmd || cmd->state() != LinkState::up) return;
  const StoreShared& store = state.store;
  std::string counts_key = cfg.prefix + "counts:" + store.instance;
  std::string instances_key = cfg.prefix + "instances";
  std::vector<std::string> args{store.instance, std::to_string(3 * cfg.sync_interval_ms),
                                cfg.prefix};
  for (const Pool& p : pools)
    for (const Backend& b : p.backends) {
      args.push_back(fleet_count_name(p.name, b.name));
      args.push_back(std::to_string(state.sessions.pinned(b.ref)));
    }
  std::vector<std::string_view> views(args.begin(), args.end());
  syncing = cmd->evalsha(StoreScript::fleet_sync, {counts_key, instances_key}, views,
                         [this](LinkResult r, const redisReply* reply) { on_sync(r, reply); }) != 0;
}

void StoreControl::Impl::on_sync(LinkResult r, const redisReply* reply) {
  syncing = false;
  StoreShared& store = state.store;
  if (r != LinkResult::reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER) {
    if (r == LinkResult::timeout) store.counters.timeouts.fetch_add(1, std::memory_order_relaxed);
    store.counters.errors.fetch_add(1, std::memory_order_relaxed);
    if (r == LinkResult::reply && reply->type == REDIS_REPLY_ERROR)
      store.set_error("fleet_sync: " + std::string(reply->str, reply->len));
    return;
  }
  std::vector<std::string> texts;
  for (size_t i = 1; i < reply->elements; ++i) {
    std::optional<std::string> t = element_text(reply->element[i]);
    if (!t) {
      store.counters.errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    texts.push_back(std::move(*t));
  }
  std::vector<std::string_view> pairs(texts.begin(), texts.end());
  auto resolve = [&](std::string_view name) -> std::optional<BackendRef> {
    std::optional<PoolBackend> pb = split_pool_backend(name);
    if (!pb) return std::nullopt;
    return state.registry.find(std::string(pb->pool), std::string(pb->backend));
  };
  std::optional<FleetReply> fr = parse_fleet_reply(reply->element[0]->integer, pairs, resolve);
  if (!fr) {
    store.counters.errors.fetch_add(1, std::memory_order_relaxed);
    store.set_error("fleet_sync: malformed reply");
    return;
  }
  store.fleet.replace(fr->counts);
  store.fleet.set_live_instances(fr->live_instances);
  store.counters.syncs.fetch_add(1, std::memory_order_relaxed);
}

// Writes made while Redis was unusable, kFlushBatch at a time, pipelined: a claim as
// pin_claim (first writer wins), a move as pin_cas (and published). One batch at a time;
// a batch that fully succeeds is followed by the next at once.
void StoreControl::Impl::flush() {
  if (flushing || !cmd || cmd->state() != LinkState::up) return;
  if (state.store.pending.size() == 0) return;
  auto batch = std::make_shared<Batch>();
  batch->writes = state.store.pending.take(kFlushBatch);
  if (batch->writes.empty()) return;
  flushing = true;
  batch->left = 1;  // held until every write is sent
  for (size_t i = 0; i < batch->writes.size(); ++i) {
    const PendingWrite& w = batch->writes[i];
    auto done = [this, batch, i](LinkResult r, const redisReply* reply) {
      on_flushed(*batch, i, r, reply);
      if (--batch->left == 0) finish_batch(*batch);
    };
    // The key as it was queued (a reload may have changed the prefix since).
    std::optional<SessionKey> key = key_of_pin_key(w.key);
    Ticket t = 0;
    if (w.expected.empty()) {
      // No message to build: a claim whose key cannot be decoded is still written as queued.
      ClaimArgs a{w.key, w.value, std::to_string(ttl_ms)};
      t = cmd->evalsha(StoreScript::pin_claim, a.keys(), a.args(), done);
    } else {
      std::optional<StoredPin> mine = decode_pin(w.value);
      if (!key || !mine) {
        // A move nobody could be told about (its message would be empty): never written.
        state.store.counters.errors.fetch_add(1, std::memory_order_relaxed);
        log_limited("shared store: dropped a queued move of %s that cannot be decoded",
                    w.key.c_str());
        continue;
      }
      CasArgs a = cas_args(cfg.prefix, *key, w.expected, w.value, mine->backend,
                           state.store.instance, ttl_ms);
      a.key = w.key;
      t = cmd->evalsha(StoreScript::pin_cas, a.keys(), a.args(), done);
    }
    if (t != 0)
      ++batch->left;
    else
      batch->failed.push_back(w);
  }
  if (--batch->left == 0) finish_batch(*batch);
}

void StoreControl::Impl::on_flushed(Batch& b, size_t i, LinkResult r, const redisReply* reply) {
  const PendingWrite& w = b.writes[i];
  StoreCounters& c = state.store.counters;
  if (r != LinkResult::reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER) {
    if (r == LinkResult::timeout) c.timeouts.fetch_add(1, std::memory_order_relaxed);
    c.errors.fetch_add(1, std::memory_order_relaxed);
    if (r == LinkResult::reply && reply->type == REDIS_REPLY_ERROR)
      state.store.set_error("flush: " + std::string(reply->str, reply->len));
    b.failed.push_back(w);
    return;
  }
  c.flushed.fetch_add(1, std::memory_order_relaxed);
  if (reply->element[0]->integer == 1) {
    if (!w.expected.empty()) c.invalidations_out.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::optional<std::string> v = element_text(reply->element[1]);
  std::optional<StoredPin> stored = v ? decode_pin(*v) : std::nullopt;
  if (stored) {
    c.flush_adopted.fetch_add(1, std::memory_order_relaxed);
    adopt(w, *stored);
    return;
  }
  // A claim found a value no corral can read: ours replaces it at the next flush (pin_cas
  // treats a value that is not a v1 pin as missing).
  if (w.expected.empty())
    if (std::optional<StoredPin> mine = decode_pin(w.value))
      state.store.pending.push(PendingWrite{w.key, mine->backend, w.value});
}

void StoreControl::Impl::finish_batch(Batch& b) {
  flushing = false;
  if (!b.failed.empty()) {
    // Back at the oldest end; the next sync tick tries again.
    state.store.pending.restore(std::move(b.failed));
    return;
  }
  flush();
}

// Another instance wrote the key first (or moved it): follow it, as a request would.
void StoreControl::Impl::adopt(const PendingWrite& w, const StoredPin& stored) {
  std::optional<SessionKey> key = key_of_pin_key(w.key);
  if (!key) return;
  std::optional<StoredPin> mine = decode_pin(w.value);
  std::optional<BackendRef> ref = resolve(*key, stored.backend, mine ? mine->backend : "");
  if (!ref) return;  // a backend this instance does not have now: the next request re-places
  state.sessions.adopt(*key, *ref, stored.last_slot, static_cast<uint8_t>(stored.reason), now());
}

std::optional<std::string_view> StoreControl::Impl::pool_of(const Runtime& rt,
                                                            std::string_view backend) {
  for (const RuntimePool& p : rt.pools)
    for (const RuntimeBackend& b : p.backends)
      if (b.name == backend) return std::string_view(p.name);
  return std::nullopt;
}

// The ref of backend `stored` in the key's pool, only if it is configured there now.
// Keys are pool-salted, so the pool is not in the key: it is the pool of our own queued
// choice (backend names are unique across pools, config/read_pools.cpp), else the pool of
// the local pin.
std::optional<BackendRef> StoreControl::Impl::resolve(const SessionKey& key,
                                                      const std::string& stored,
                                                      const std::string& own) const {
  std::shared_ptr<const Runtime> rt = state.runtime.load();
  if (!rt) return std::nullopt;
  std::optional<std::string_view> pool = own.empty() ? std::nullopt : pool_of(*rt, own);
  std::string local;
  if (!pool)
    if (std::optional<Pin> p = state.sessions.peek(key)) {
      local = state.registry.name_of(p->backend);
      if (std::optional<PoolBackend> pb = split_pool_backend(local)) pool = pb->pool;
    }
  if (!pool) return std::nullopt;
  return resolve_stored(*rt, *pool, stored);
}

void StoreControl::Impl::on_message(std::string_view channel, std::string_view msg) {
  if (channel.size() == sub_prefix.size() + 4 && channel.substr(sub_prefix.size()) == "pins")
    on_pin_moved(msg);
  else if (channel.size() == sub_prefix.size() + 5 && channel.substr(sub_prefix.size()) == "quota")
    on_quota_cooled(msg);
}

// Another instance re-pinned a user: drop our copy if it still names the old backend, so
// the next request reads the new pin from the store.
void StoreControl::Impl::on_pin_moved(std::string_view msg) {
  std::optional<PinMoved> m = decode_pin_moved(msg);
  if (!m) {
    log_limited("shared store: ignored a malformed message on %spins", sub_prefix.c_str());
    return;
  }
  if (m->instance == state.store.instance) return;  // our own move
  bool dropped = false;
  if (!m->from.empty()) {
    for (const Pool& p : pools)
      if (auto ref = state.registry.find(p.name, m->from))
        dropped = state.sessions.erase_if(m->key, *ref) || dropped;
  } else if (std::optional<Pin> pin = state.sessions.peek(m->key)) {
    // The store had no pin: ours is stale unless it already names the new backend.
    std::string full = state.registry.name_of(pin->backend);
    size_t slash = full.find('/');
    if (slash == std::string::npos || full.substr(slash + 1) != m->to)
      dropped = state.sessions.erase(m->key);
  }
  if (dropped) state.store.counters.invalidations_in.fetch_add(1, std::memory_order_relaxed);
}

// Another instance's upstream cool-down (Blockfrost 402/429/418): this one pauses too.
void StoreControl::Impl::on_quota_cooled(std::string_view msg) {
  std::optional<QuotaCooled> m = decode_quota_cooled(msg);
  if (!m) {
    log_limited("shared store: ignored a malformed message on %squota", sub_prefix.c_str());
    return;
  }
  if (m->instance == state.store.instance) return;
  if (std::shared_ptr<QuotaGuard> g = state.registry.find_quota(m->pool))
    g->apply_remote_cooldown(m->status, m->until_unix_ms, now(), wall_ms());
}

}  // namespace lb::net
