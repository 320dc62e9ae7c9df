#include "config/diff.h"

#include <utility>

namespace config {
namespace {

template <class T, class Name>
const T* find_named(const std::vector<T>& v, const std::string& name, Name name_of) {
  for (const T& x : v)
    if (name_of(x) == name) return &x;
  return nullptr;
}

// Adds "<what> <name> added/removed" for names in one list and not the other, and
// "<what> <name> changed" for those in both where `same` is false.
template <class T, class Name, class Same>
void diff_named(const std::vector<T>& a, const std::vector<T>& b, const std::string& what,
                const std::string& prefix, Name name_of, Same same, std::vector<std::string>& out) {
  for (const T& x : a) {
    const T* y = find_named(b, name_of(x), name_of);
    if (!y)
      out.push_back(what + " " + prefix + name_of(x) + " removed");
    else if (!same(x, *y))
      out.push_back(what + " " + prefix + name_of(x) + " changed");
  }
  for (const T& y : b)
    if (!find_named(a, name_of(y), name_of))
      out.push_back(what + " " + prefix + name_of(y) + " added");
}

// Calls each(x, y) for every item x of `a` that has a namesake y in `b`, in a's order.
template <class T, class Name, class Each>
void for_common(const std::vector<T>& a, const std::vector<T>& b, Name name_of, Each each) {
  for (const T& x : a)
    if (const T* y = find_named(b, name_of(x), name_of)) each(x, *y);
}

bool same_backend(const Backend& a, const Backend& b) {
  return a.address.text == b.address.text && a.weight == b.weight && a.tls == b.tls &&
         a.tls_ca == b.tls_ca && a.tls_server_name == b.tls_server_name;
}

bool same_route(const Route& a, const Route& b) {
  return a.pool == b.pool && a.strip_prefix == b.strip_prefix && a.methods == b.methods &&
         a.websocket == b.websocket && a.allow_writes == b.allow_writes &&
         a.client_rate_limit == b.client_rate_limit && a.expose_backend == b.expose_backend;
}

bool same_secret(const Secret& a, const Secret& b) {
  return a.env == b.env && a.file == b.file && a.value == b.value;
}

// Everything of a pool other than its backends and headers, which are listed one by one.
bool same_pool_settings(const Pool& a, const Pool& b) {
  const Health &x = a.health, &y = b.health;
  return a.kind == b.kind && x.interval_ms == y.interval_ms && x.timeout_ms == y.timeout_ms &&
         x.rise == y.rise && x.fall == y.fall && x.max_lag_slots == y.max_lag_slots &&
         x.stale_after_ms == y.stale_after_ms && x.path == y.path &&
         x.expect_status == y.expect_status && a.eject.consecutive_503 == b.eject.consecutive_503 &&
         a.eject.base_time_ms == b.eject.base_time_ms &&
         a.eject.max_time_ms == b.eject.max_time_ms && a.eject.max_percent == b.eject.max_percent &&
         a.timeouts.connect_ms == b.timeouts.connect_ms &&
         a.timeouts.response_ms == b.timeouts.response_ms && a.slow_start_ms == b.slow_start_ms &&
         a.remove_headers == b.remove_headers && a.rate_limit == b.rate_limit;
}

// A size as the config would spell it: the largest binary unit that divides it exactly.
std::string size_text(uint64_t n) {
  const char* units[] = {"GB", "MB", "KB"};
  for (int i = 0; i < 3; ++i) {
    uint64_t scale = 1ull << (10 * (3 - i));
    if (n != 0 && n % scale == 0) return std::to_string(n / scale) + units[i];
  }
  return std::to_string(n);
}

// A duration as the config would spell it: the largest unit that divides it exactly.
std::string duration_text(uint64_t ms) {
  const std::pair<uint64_t, const char*> units[] = {
      {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
  for (auto [scale, unit] : units)
    if (ms != 0 && ms % scale == 0) return std::to_string(ms / scale) + unit;
  return std::to_string(ms) + "ms";
}

std::string list_text(const std::vector<std::string>& v) {
  std::string s = "[";
  for (const std::string& x : v) s += (s.size() > 1 ? ", " : "") + x;
  return s + "]";
}

// "pools.P.cache added/removed", or one "pools.P.cache.KEY old -> new" per changed key: a
// reload applies max_bytes at once and purges on a rule change, so the log says which.
void diff_cache(const Pool& a, const Pool& b, std::vector<std::string>& out) {
  std::string at = "pools." + a.name + ".cache";
  if (!a.cache && !b.cache) return;
  if (!b.cache) return out.push_back(at + " removed");
  if (!a.cache) return out.push_back(at + " added");
  const CacheConfig &x = *a.cache, &y = *b.cache;
  auto line = [&](const char* key, const std::string& from, const std::string& to) {
    if (from != to) out.push_back(at + "." + key + " " + from + " -> " + to);
  };
  line("max_bytes", size_text(x.max_bytes), size_text(y.max_bytes));
  line("immutable_after_slots", std::to_string(x.immutable_after_slots),
       std::to_string(y.immutable_after_slots));
  line("prefixes", list_text(x.prefixes), list_text(y.prefixes));
  line("max_age", x.max_age_ms ? duration_text(x.max_age_ms) : "none",
       y.max_age_ms ? duration_text(y.max_age_ms) : "none");
  line("collapse", x.collapse ? "true" : "false", y.collapse ? "true" : "false");
}

}  // namespace

std::vector<std::string> describe_changes(const Config& before, const Config& after) {
  std::vector<std::string> out;
  auto pool_name = [](const Pool& p) { return p.name; };
  diff_named(
      before.pools, after.pools, "pool", "", pool_name,
      [](const Pool& a, const Pool& b) { return same_pool_settings(a, b); }, out);
  // Backends and injected headers of pools present on both sides (a pool added or removed
  // says it all).
  for_common(before.pools, after.pools, pool_name, [&](const Pool& a, const Pool& b) {
    diff_named(
        a.backends, b.backends, "backend", a.name + "/", [](const Backend& x) { return x.name; },
        same_backend, out);
    diff_named(
        a.set_headers, b.set_headers, "injected header", a.name + "/",
        [](const std::pair<std::string, Secret>& h) { return h.first; },
        [](const auto& x, const auto& y) { return same_secret(x.second, y.second); }, out);
    diff_cache(a, b, out);
  });
  auto listener_name = [](const Listener& l) { return l.name; };
  diff_named(
      before.listeners, after.listeners, "listener", "", listener_name,
      [](const Listener& a, const Listener& b) {
        return a.listen.text == b.listen.text && a.tls == b.tls &&
               a.proxy_protocol == b.proxy_protocol;
      },
      out);
  for_common(before.listeners, after.listeners, listener_name,
             [&](const Listener& a, const Listener& b) {
               diff_named(
                   a.routes, b.routes, "route", a.name + " ",
                   [](const Route& r) { return r.prefix; }, same_route, out);
             });
  if (before.limits != after.limits) out.push_back("limits changed");
  // The store separately: its link reconnects on a change, which the operator should see named
  // (a password change shows as "changed", never with the value).
  config::Sticky sb = before.sticky, sa = after.sticky;
  sb.store.reset();
  sa.store.reset();
  if (sb != sa) out.push_back("sticky changed");
  if (before.sticky.store && !after.sticky.store)
    out.push_back("sticky.store removed");
  else if (!before.sticky.store && after.sticky.store)
    out.push_back("sticky.store added");
  else if (before.sticky.store != after.sticky.store)
    out.push_back("sticky.store changed");
  if (before.log != after.log) out.push_back("log changed");
  if (before.admin.token != after.admin.token) out.push_back("admin token changed");
  return out;
}

std::string join_changes(const std::vector<std::string>& changes) {
  if (changes.empty()) return "no changes";
  std::string s;
  for (const std::string& c : changes) {
    if (!s.empty()) s += "; ";
    s += c;
  }
  return s;
}

}  // namespace config
