// POST /cache/purge (cache_purge.h): the query's parameters, the purge, its answer and log.
#include "lb/admin/cache_purge.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "lb/admin/json_writer.h"
#include "lb/net/log.h"

namespace lb::admin {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// `v` with its %XX escapes decoded (a curl --data-urlencode style client sends "/" as
// %2F); nullopt on a malformed escape. '+' stays '+': a path prefix is no form field.
std::optional<std::string> percent_decode(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] != '%') {
      out.push_back(v[i]);
      continue;
    }
    const int hi = i + 1 < v.size() ? hex_digit(v[i + 1]) : -1;
    const int lo = i + 2 < v.size() ? hex_digit(v[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

struct PurgeQuery {
  const char* error = nullptr;  // set: a 400 with this reason
  std::optional<std::string> pool;
  std::optional<std::string> prefix;
};

// pool=NAME and prefix=/path/, each at most once, '&'-separated (empty members skipped).
PurgeQuery parse_query(std::string_view q) {
  PurgeQuery out;
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view member = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (member.empty()) continue;
    const size_t eq = member.find('=');
    if (eq == std::string_view::npos) {
      out.error = "expected pool=NAME and prefix=/path/ in the query";
      return out;
    }
    const std::string_view name = member.substr(0, eq);
    std::optional<std::string>* slot = name == "pool"     ? &out.pool
                                       : name == "prefix" ? &out.prefix
                                                          : nullptr;
    if (slot == nullptr) {
      out.error = "unknown query parameter (expected pool and prefix)";
      return out;
    }
    if (slot->has_value()) {
      out.error = "a query parameter is repeated";
      return out;
    }
    *slot = percent_decode(member.substr(eq + 1));
    if (!slot->has_value()) {
      out.error = "malformed percent-escape in the query";
      return out;
    }
  }
  if (out.pool && out.pool->empty()) out.error = "pool is empty";
  if (out.prefix && !out.prefix->starts_with('/')) out.error = "prefix must start with '/'";
  return out;
}

PurgeAnswer refuse(int status, std::string_view why) {
  net::log_limited("admin: POST /cache/purge refused (%d): %.*s", status,
                   static_cast<int>(why.size()), why.data());
  JsonWriter j;
  j.begin_object().key("error").value(why).end_object();
  return {status, j.str() + "\n", false};
}

}  // namespace

PurgeAnswer cache_purge(const net::Runtime& rt, std::string_view method, std::string_view query) {
  if (method != "POST") {
    net::log_limited("admin: %.*s /cache/purge refused (405): only POST purges",
                     static_cast<int>(std::min<size_t>(method.size(), 20)), method.data());
    return {405, "{\"error\":\"method not allowed; POST purges\"}\n", true};
  }
  const PurgeQuery q = parse_query(query);
  if (q.error != nullptr) return refuse(400, q.error);

  std::vector<const net::RuntimePool*> targets;
  if (q.pool) {
    auto it = std::find_if(rt.pools.begin(), rt.pools.end(),
                           [&](const net::RuntimePool& p) { return p.name == *q.pool; });
    if (it == rt.pools.end()) return refuse(404, "no such pool");
    if (!it->cache) return refuse(404, "the pool has no cache");
    targets.push_back(&*it);
  } else {
    for (const net::RuntimePool& p : rt.pools)
      if (p.cache) targets.push_back(&p);
  }

  const std::string prefix = q.prefix.value_or("");
  PurgeResult total;
  std::string names;
  JsonWriter j;
  j.begin_object();
  for (const net::RuntimePool* p : targets) {
    const PurgeResult r = p->cache->cache.purge(prefix);
    total.entries += r.entries;
    total.bytes += r.bytes;
    if (!names.empty()) names += ',';
    names += p->name;
  }
  j.key("purged").value(total.entries).key("bytes").value(total.bytes);
  j.key("pools").begin_array();
  for (const net::RuntimePool* p : targets) j.value(p->name);
  j.end_array().end_object();

  const std::string entries = std::to_string(total.entries);
  const std::string bytes = std::to_string(total.bytes);
  net::log_event(net::LogLevel::info, "cache purged",
                 {{"pool", names.empty() ? std::string_view("-") : std::string_view(names)},
                  {"prefix", prefix.empty() ? std::string_view("-") : std::string_view(prefix)},
                  {"entries", entries, true},
                  {"bytes", bytes, true}});
  return {200, j.str() + "\n", false};
}

}  // namespace lb::admin
