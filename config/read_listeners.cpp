// listeners: and their routes.
#include <algorithm>
#include <cmath>
#include <tuple>

#include "config/loader_impl.h"
#include "config/text.h"
#include "config/tls_pem.h"

namespace config::detail {

void Loader::parse_listeners(const Map& root, Config& c) {
  const Entry* e = get(root, "listeners");
  if (!e) {
    if (root.ok) add(root.pos, "listeners", "at least one listener is required");
    return;
  }
  auto items = as_list(*e);
  if (!items) return;
  if (items->empty()) error(*e, "at least one listener is required");
  for (const Entry& item : *items) parse_listener(item, c);
}

void Loader::parse_listener(const Entry& e, Config& c) {
  Map m = as_map(e, {"name", "listen", "routes", "tls", "proxy_protocol"});
  if (!m.ok) return;
  Listener l;
  if (const Entry* n = get(m, "name", true); n && read_name(*n, l.name)) {
    auto [it, fresh] = listener_names_.emplace(l.name, e.path);
    if (!fresh) error(*n, "duplicate listener name '" + l.name + "' (also " + it->second + ")");
  }
  if (const Entry* a = get(m, "listen", true); a && read_address(*a, l.listen, true))
    binds_.push_back(Bind{l.listen, a->pos, a->path});
  if (const Entry* t = get(m, "tls")) parse_listener_tls(*t, l);
  if (const Entry* p = get(m, "proxy_protocol")) read_bool(*p, l.proxy_protocol);
  const Entry* r = get(m, "routes");
  if (!r) {
    add(m.pos, join(m.path, "routes"), "a listener needs at least one route");
  } else if (auto routes = as_list(*r)) {
    if (routes->empty()) error(*r, "a listener needs at least one route");
    std::map<std::string, std::string> prefixes;  // prefix -> first route path
    for (const Entry& re : *routes) parse_route(re, l, prefixes);
  }
  c.listeners.push_back(std::move(l));
}

// tls: {cert, key}: both files are read and checked now (a bad pair fails the load or
// the reload, and the running listener keeps its old pair).
void Loader::parse_listener_tls(const Entry& e, Listener& l) {
  Map m = as_map(e, {"cert", "key"});
  const Entry* cert = get(m, "cert", true);
  const Entry* key = get(m, "key", true);
  Tls t;
  bool ok = cert && key;
  for (auto [entry, file, pem] :
       {std::tuple{cert, &t.cert, &t.cert_pem}, {key, &t.key, &t.key_pem}}) {
    if (!entry || !read_string(*entry, *file)) {
      ok = false;
      continue;
    }
    *file = resolve(*file);
    if (std::string why = text::read_small_file(*file, *pem); !why.empty()) {
      error(*entry, "cannot read '" + *file + "': " + why);
      ok = false;
    }
  }
  if (!ok) return;
  if (PemProblem p = check_pem_pair(t.cert_pem, t.key_pem); !p.what.empty()) {
    const Entry& blame = p.in_key ? *key : *cert;
    error(blame, "'" + (p.in_key ? t.key : t.cert) + "': " + p.what);
    return;
  }
  l.tls = std::move(t);
}

void Loader::parse_route(const Entry& e, Listener& l,
                         std::map<std::string, std::string>& prefixes) {
  Map m = as_map(e, {"prefix", "pool", "strip_prefix", "methods", "websocket", "allow_writes",
                     "client_rate_limit", "expose_backend"});
  if (!m.ok) return;
  Route r;
  if (const Entry* p = get(m, "prefix", true); p && read_string(*p, r.prefix)) {
    if (r.prefix.front() != '/') {
      error(*p, "a route prefix must start with '/'");
    } else if (std::any_of(r.prefix.begin(), r.prefix.end(), [](char ch) {
                 return static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f;
               })) {
      error(*p, "a route prefix must not hold spaces or control characters");
    } else if (auto [it, fresh] = prefixes.emplace(r.prefix, e.path); !fresh) {
      // First match wins, so a repeated prefix is a route that can never be taken.
      error(*p, "duplicate prefix '" + r.prefix + "' (" + it->second + " always matches first)");
    }
  }
  PoolRef ref;
  if (const Entry* p = get(m, "pool", true); p && read_string(*p, r.pool))
    ref = PoolRef{r.pool, p->pos, p->path, std::nullopt};
  if (const Entry* b = get(m, "strip_prefix")) read_bool(*b, r.strip_prefix);
  if (const Entry* b = get(m, "websocket")) read_bool(*b, r.websocket);
  if (const Entry* b = get(m, "allow_writes"); b && read_bool(*b, r.allow_writes) && r.allow_writes)
    ref.allow_writes = *b;
  if (!ref.name.empty()) pool_refs_.push_back(std::move(ref));
  if (const Entry* me = get(m, "methods")) {
    if (auto methods = as_list(*me)) {
      // An empty list would silently mean "every method": make the operator say so.
      if (methods->empty()) error(*me, "list at least one method, or omit 'methods' for all");
      for (const Entry& x : *methods) {
        std::string name;
        if (!read_string(x, name)) continue;
        if (!text::is_token(name)) {
          error(x, "not a valid HTTP method name");
          continue;
        }
        name = text::upper(std::move(name));
        if (std::find(r.methods.begin(), r.methods.end(), name) == r.methods.end())
          r.methods.push_back(std::move(name));
      }
    }
  }
  if (const Entry* c = get(m, "client_rate_limit")) parse_client_rate_limit(*c, r);
  // expose_backend: a header name (RFC 9110 token) that answers carry with the backend's
  // name; refused when it is not a token, so the head corral writes stays valid.
  if (const Entry* x = get(m, "expose_backend");
      x && read_string(*x, r.expose_backend) && !text::is_token(r.expose_backend)) {
    error(*x, "'" + r.expose_backend +
                  "' is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)");
    r.expose_backend.clear();
  }
  l.routes.push_back(std::move(r));
}

// client_rate_limit: {rps, burst, per_ip_rps}. rps is required; burst defaults to one
// second's worth (at least 1); per_ip_rps below rps would make every key's own rate
// unreachable, so it is refused rather than silently binding.
void Loader::parse_client_rate_limit(const Entry& e, Route& r) {
  Map m = as_map(e, {"rps", "burst", "per_ip_rps"});
  if (!m.ok) return;
  lb::ClientLimit lim;
  const Entry* rps = get(m, "rps", true);
  if (!rps || !read_number(*rps, lim.rps)) return;
  if (!(lim.rps > 0) || lim.rps > 1e6) return error(*rps, "rps must be above 0 (at most 1e6)");
  lim.burst = std::max(1.0, std::ceil(lim.rps));
  if (const Entry* b = get(m, "burst"); b && read_number(*b, lim.burst)) {
    if (!(lim.burst >= 1) || lim.burst > 1e9) return error(*b, "burst must be at least 1");
  }
  if (const Entry* ip = get(m, "per_ip_rps"); ip && read_number(*ip, lim.per_ip_rps)) {
    if (!(lim.per_ip_rps > 0) || lim.per_ip_rps > 1e6)
      return error(*ip, "per_ip_rps must be above 0 (at most 1e6); omit it for no per-IP cap");
    if (lim.per_ip_rps < lim.rps)
      return error(*ip, "per_ip_rps is below rps: every client would be held to per_ip_rps");
  }
  r.client_rate_limit = lim;
}

}  // namespace config::detail
