#include "lb/net/runtime.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "lb/core/session_key.h"
#include "lb/net/log.h"
#include "lb/net/socket_address.h"

namespace lb::net {

void Registry::for_each_in_pool(const std::string& pool,
                                const std::function<void(const BackendStats&)>& fn) const {
  std::lock_guard lock(mu_);
  const std::string prefix = pool.empty() ? std::string() : pool + "/";
  for (auto it = backends_.lower_bound(prefix); it != backends_.end(); ++it) {
    if (!it->first.starts_with(prefix)) break;
    fn(*it->second.stats);
  }
}

void Registry::for_each_ref_in_pool(const std::string& pool,
                                    const std::function<void(BackendRef)>& fn) const {
  std::lock_guard lock(mu_);
  const std::string prefix = pool + "/";
  for (auto it = backends_.lower_bound(prefix); it != backends_.end(); ++it) {
    if (!it->first.starts_with(prefix)) break;
    fn(it->second.ref);
  }
}

Registry::Entry Registry::backend(const std::string& pool, const std::string& name) {
  std::lock_guard lock(mu_);
  std::string key = pool + "/" + name;
  auto it = backends_.find(key);
  if (it != backends_.end()) return it->second;
  if (backends_.size() >= SessionTable::kMaxBackends)
    return {SessionTable::kMaxBackends, std::make_shared<BackendStats>()};
  Entry e{static_cast<BackendRef>(backends_.size()), std::make_shared<BackendStats>()};
  backends_.emplace(key, e);
  return e;
}

std::optional<BackendRef> Registry::find(const std::string& pool, const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = backends_.find(pool + "/" + name);
  if (it == backends_.end()) return std::nullopt;
  return it->second.ref;
}

// A linear scan: called once per distinct backend when saving state, and the registry
// holds at most kMaxBackends names.
std::string Registry::name_of(BackendRef ref) const {
  std::lock_guard lock(mu_);
  for (const auto& [key, entry] : backends_)
    if (entry.ref == ref) return key;
  return "";
}

std::shared_ptr<ListenerStats> Registry::listener(const std::string& name) {
  std::lock_guard lock(mu_);
  auto& s = listeners_[name];
  if (!s) s = std::make_shared<ListenerStats>();
  return s;
}

std::shared_ptr<std::atomic<uint64_t>> Registry::route_limited(const std::string& listener,
                                                               const std::string& prefix) {
  std::lock_guard lock(mu_);
  auto& c = route_limited_[listener + " " + prefix];
  if (!c) c = std::make_shared<std::atomic<uint64_t>>(0);
  return c;
}

std::shared_ptr<QuotaGuard> Registry::quota(const std::string& pool, const QuotaLimits& limits) {
  std::lock_guard lock(mu_);
  auto& g = quotas_[pool];
  if (!g)
    g = std::make_shared<QuotaGuard>(limits, 0);  // a full bucket whatever the clock
  else if (!(g->limits() == limits))
    g->set_limits(limits);
  return g;
}

std::shared_ptr<QuotaGuard> Registry::find_quota(const std::string& pool) const {
  std::lock_guard lock(mu_);
  auto it = quotas_.find(pool);
  return it == quotas_.end() ? nullptr : it->second;
}

void Registry::for_each_quota(
    const std::function<void(const std::string&, QuotaGuard&)>& fn) const {
  std::lock_guard lock(mu_);
  for (const auto& [name, g] : quotas_) fn(name, *g);
}

std::shared_ptr<PoolCache> Registry::cache(const std::string& pool, const config::CacheConfig& cfg,
                                           bool kupo) {
  std::lock_guard lock(mu_);
  auto& c = caches_[pool];
  if (!c)
    c = std::make_shared<PoolCache>(cfg, kupo);
  else if (c->reconfigure(cfg, kupo))
    log_pool(LogLevel::info, pool, "cache purged: its rules changed");
  return c;
}

void Registry::retain_caches(const std::vector<std::string>& keep) {
  std::lock_guard lock(mu_);
  std::erase_if(caches_, [&](const auto& kv) {
    return std::find(keep.begin(), keep.end(), kv.first) == keep.end();
  });
}

namespace {

// The book of `pool/name` at `address` in the previous snapshot, if any.
std::shared_ptr<AddressBook> previous_book(const Runtime* prev, const std::string& pool,
                                           const std::string& name, const std::string& address) {
  if (!prev) return nullptr;
  for (const RuntimePool& p : prev->pools) {
    if (p.name != pool) continue;
    for (const RuntimeBackend& b : p.backends)
      if (b.name == name && b.address == address) return b.addrs;
  }
  return nullptr;
}

// The server context for a TLS listener: the running one when its pair is unchanged, else
// a new one. The loader checked the pair, so a failure here is exceptional (memory): it is
// logged and the listener refuses connections rather than serve clear text.
// True when a reload keeps pool `p` but none of its backend addresses: it may now serve
// another network, whose slot-bound answers differ, so its cache must not carry over.
bool backends_replaced(const Runtime* prev, const config::Pool& p) {
  if (!prev) return false;
  for (const RuntimePool& old : prev->pools) {
    if (old.name != p.name) continue;
    for (const RuntimeBackend& ob : old.backends)
      for (const config::Backend& b : p.backends)
        if (ob.address == b.address.text) return false;
    return true;
  }
  return false;
}

TlsContext listener_tls(const config::Listener& l, const Runtime* prev) {
  if (prev)
    for (size_t i = 0; i < prev->listeners.size(); ++i) {
      const config::Listener& p = prev->config.listeners[i];
      if (p.name == l.name && p.tls == l.tls && prev->listeners[i].tls_context)
        return prev->listeners[i].tls_context;
    }
  std::string err;
  TlsContext ctx = make_server_tls_pem(l.tls->cert_pem, l.tls->key_pem, err);
  if (!ctx)
    logf(LogLevel::error, "listener %s: TLS context: %s: %s; connections are refused",
         l.name.c_str(), l.tls->cert.c_str(), err.c_str());
  return ctx;
}

// A backend's client TLS context, made anew on every build so that a reload re-reads a
// rotated CA file (the workers' saved sessions stay usable with the new context).
TlsContext client_tls(const config::Backend& b, const std::string& pool) {
  std::string err;
  TlsContext ctx = make_client_tls(b.tls_ca, err);
  if (!ctx)
    log_backend(LogLevel::error, pool, b.name, "TLS: %s; it is unreachable until fixed",
                err.c_str());
  return ctx;
}

// The numeric text of an address ("10.0.0.5", "::1"), without the port.
std::string numeric_ip(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(a).sin_addr, buf, sizeof buf);
  else if (a.ss_family == AF_INET6)
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(a).sin6_addr, buf, sizeof buf);
  return buf;
}

// sticky.store resolved here, on the control thread (a worker never calls getaddrinfo): the
// first address of the host. The store is an optimisation, so a name that does not resolve
// never stops a start or a reload: like a backend, it is logged and left down (`ip` empty);
// a reload keeps the last good address of the same host:port instead.
RuntimeStore resolve_store(const config::StickyStore& s, const Runtime* prev) {
  RuntimeStore out;
  out.port = s.port;
  out.password = s.password.value;
  AddressBook book(s.host, s.port);
  std::string why;
  if (!resolve_now(book, why)) {
    if (prev && prev->store && !prev->store->ip.empty() && prev->config.sticky.store &&
        prev->config.sticky.store->redis == s.redis) {
      out.ip = prev->store->ip;
      logf(LogLevel::warn, "sticky.store: cannot resolve %s (%s); keeping %s", s.redis.c_str(),
           why.c_str(), out.ip.c_str());
    } else {
      logf(LogLevel::warn,
           "sticky.store: cannot resolve %s (%s); pins stay local until a reload resolves it",
           s.redis.c_str(), why.c_str());
    }
    return out;
  }
  out.ip = numeric_ip(book.get()->front());
  if (!book.literal())
    logf(LogLevel::info, "sticky.store: %s resolves to %s", s.redis.c_str(), out.ip.c_str());
  return out;
}

}  // namespace

std::shared_ptr<const Runtime> build_runtime(const config::Config& cfg, Registry& registry,
                                             const Runtime* prev) {
  auto rt = std::make_shared<Runtime>();
  rt->config = cfg;
  if (cfg.sticky.store) rt->store = resolve_store(*cfg.sticky.store, prev);
  for (const config::Pool& p : cfg.pools) {
    RuntimePool& pool = rt->pools.emplace_back();
    pool.name = p.name;
    pool.slow_start_ms = p.slow_start_ms;
    pool.salt = name_hash(p.name);
    pool.kind = p.kind;
    pool.timeouts = p.timeouts;
    pool.resolve_interval_ms = p.resolve_interval_ms;
    for (const auto& [name, secret] : p.set_headers) pool.inject.push_back({name, secret.value});
    pool.remove_request = p.remove_headers.request;
    pool.remove_response = p.remove_headers.response;
    if (p.rate_limit)
      pool.quota =
          registry.quota(p.name, {p.rate_limit->rps, p.rate_limit->burst, p.rate_limit->daily});
    if (p.cache) {
      pool.cache = registry.cache(p.name, *p.cache, p.kind == config::PoolKind::kupo);
      if (backends_replaced(prev, p) && pool.cache->cache.purge({}).entries > 0)
        log_pool(LogLevel::info, p.name, "cache purged: every backend was replaced");
    }
    std::vector<SelectorBackend> sel;
    for (const config::Backend& b : p.backends) {
      RuntimeBackend& rb = pool.backends.emplace_back();
      rb.name = b.name;
      rb.address = b.address.text;
      rb.weight = b.weight;
      rb.tls = b.tls;
      if (b.tls) {
        rb.tls_name = b.tls_server_name.empty() ? b.address.host : b.tls_server_name;
        rb.tls_ctx = client_tls(b, p.name);
      }
      Registry::Entry e = registry.backend(p.name, b.name);
      rb.ref = e.ref;
      rb.stats = e.stats;
      rb.addrs = previous_book(prev, p.name, b.name, b.address.text);
      if (!rb.addrs) {
        rb.addrs = std::make_shared<AddressBook>(b.address.host, b.address.port);
        std::string why;
        if (!resolve_now(*rb.addrs, why))
          log_backend(LogLevel::warn, p.name, b.name,
                      "cannot resolve %s (%s); it is down until it does", b.address.text.c_str(),
                      why.c_str());
        else if (!rb.addrs->literal())
          log_backend(LogLevel::info, p.name, b.name, "%s resolves to %s", b.address.text.c_str(),
                      describe(*rb.addrs->get()).c_str());
        rb.addrs->next_due_ms = 0;  // the Resolver's first tick sets its interval going
      }
      pool.weights.push_back(b.weight);
      sel.push_back({name_hash(p.name + "/" + b.name), b.weight});
    }
    pool.selector = make_selector(cfg.sticky.hash, sel);
  }
  for (const config::Listener& l : cfg.listeners) {
    RuntimeListener& rl = rt->listeners.emplace_back();
    rl.name = l.name;
    rl.listen = l.listen;
    rl.proxy_protocol = l.proxy_protocol;
    rl.stats = registry.listener(l.name);
    if (l.tls) {
      rl.tls = true;
      rl.tls_context = listener_tls(l, prev);
    }
    for (const config::Route& r : l.routes) {
      RouteSpec spec;
      spec.prefix = r.prefix;
      spec.strip_prefix = r.strip_prefix;
      spec.methods = r.methods;
      spec.websocket = r.websocket;
      spec.allow_writes = r.allow_writes;
      spec.client_limit = r.client_rate_limit;
      spec.expose_backend = r.expose_backend;
      spec.limit_id = name_hash(l.name + "\n" + r.prefix);
      rl.limited.push_back(registry.route_limited(l.name, r.prefix));
      for (size_t i = 0; i < cfg.pools.size(); ++i)
        if (cfg.pools[i].name == r.pool) {
          spec.pool = static_cast<uint32_t>(i);
          spec.kupo = cfg.pools[i].kind == config::PoolKind::kupo;
        }
      rl.routes.push_back(std::move(spec));
    }
  }
  std::vector<std::string> cached;
  for (const config::Pool& p : cfg.pools)
    if (p.cache) cached.push_back(p.name);
  registry.retain_caches(cached);
  return rt;
}

}  // namespace lb::net
