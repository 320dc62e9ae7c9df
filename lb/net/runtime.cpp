#include "lb/net/runtime.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>

#include "lb/core/session_key.h"
#include "lb/net/log.h"
#include "lb/net/socket_address.h"

namespace lb::net {

void Registry::for_each_in_pool(const std::string& pool,
                                const std::function<void(const BackendStats&)>& fn) const {
  std::lock_guard lock(mu_);
  const std::string prefix = pool + "/";
  for (auto it = backends_.lower_bound(prefix); it != backends_.end(); ++it) {
    if (!it->first.starts_with(prefix)) break;
    fn(*it->second.stats);
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

namespace {
bool resolve(const config::Address& a, sockaddr_storage& out) {
  if (ip_sockaddr(a.host, a.port, out)) return true;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(a.host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) return false;
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  set_port(out, a.port);
  freeaddrinfo(res);
  return true;
}
}  // namespace

std::shared_ptr<const Runtime> build_runtime(const config::Config& cfg, Registry& registry) {
  auto rt = std::make_shared<Runtime>();
  rt->config = cfg;
  for (const config::Pool& p : cfg.pools) {
    RuntimePool& pool = rt->pools.emplace_back();
    pool.name = p.name;
    pool.slow_start_ms = p.slow_start_ms;
    pool.salt = name_hash(p.name);
    pool.kind = p.kind;
    pool.timeouts = p.timeouts;
    for (const auto& [name, secret] : p.set_headers) pool.inject.push_back({name, secret.value});
    if (p.rate_limit)
      pool.quota =
          registry.quota(p.name, {p.rate_limit->rps, p.rate_limit->burst, p.rate_limit->daily});
    std::vector<SelectorBackend> sel;
    for (const config::Backend& b : p.backends) {
      RuntimeBackend& rb = pool.backends.emplace_back();
      rb.name = b.name;
      rb.address = b.address.text;
      rb.weight = b.weight;
      rb.tls = b.tls;
      Registry::Entry e = registry.backend(p.name, b.name);
      rb.ref = e.ref;
      rb.stats = e.stats;
      rb.resolved = resolve(b.address, rb.addr);
      if (!rb.resolved)
        logf(LogLevel::warn, "pool %s backend %s: cannot resolve %s; it is down until it does",
             p.name.c_str(), b.name.c_str(), b.address.text.c_str());
      pool.weights.push_back(b.weight);
      sel.push_back({name_hash(p.name + "/" + b.name), b.weight});
    }
    pool.selector = make_selector(cfg.sticky.hash, sel);
  }
  for (const config::Listener& l : cfg.listeners) {
    RuntimeListener& rl = rt->listeners.emplace_back();
    rl.name = l.name;
    rl.listen = l.listen;
    rl.stats = registry.listener(l.name);
    for (const config::Route& r : l.routes) {
      RouteSpec spec;
      spec.prefix = r.prefix;
      spec.strip_prefix = r.strip_prefix;
      spec.methods = r.methods;
      spec.websocket = r.websocket;
      spec.allow_writes = r.allow_writes;
      for (size_t i = 0; i < cfg.pools.size(); ++i)
        if (cfg.pools[i].name == r.pool) {
          spec.pool = static_cast<uint32_t>(i);
          spec.kupo = cfg.pools[i].kind == config::PoolKind::kupo;
        }
      rl.routes.push_back(std::move(spec));
    }
  }
  return rt;
}

}  // namespace lb::net
