#include "lb/core/router.h"

#include "lb/core/kupo_path.h"

namespace lb {

bool prefix_matches(std::string_view prefix, std::string_view path) {
  if (!path.starts_with(prefix)) {
    // "/kupo/" also matches "/kupo" exactly: a user typing the bare prefix.
    return prefix.size() > 1 && prefix.back() == '/' && path == prefix.substr(0, prefix.size() - 1);
  }
  if (prefix.empty() || prefix.back() == '/' || path.size() == prefix.size()) return true;
  char next = path[prefix.size()];
  return next == '/' || next == '?';
}

bool is_kupo_write(std::string_view method, std::string_view path) {
  // Kupo matches on the decoded segments with leading "v1"s dropped (lb/core/kupo_path).
  std::string_view first = kupo_endpoint(path);
  if (first == "matches") return method == "DELETE";
  if (first == "patterns")
    return method == "PUT" || method == "DELETE" || method == "POST" || method == "PATCH";
  return false;
}

RouteMatch match_route(std::span<const RouteSpec> routes, std::string_view method,
                       std::string_view target) {
  RouteMatch m;
  for (const RouteSpec& r : routes) {
    if (!prefix_matches(r.prefix, target)) continue;
    m.route = &r;
    if (r.strip_prefix) {
      // Keep the slash that ends a prefix like "/kupo/"; a bare "/kupo" forwards as "/".
      size_t cut = r.prefix.size() - (r.prefix.back() == '/' ? 1 : 0);
      m.forward = target.size() < r.prefix.size() ? std::string_view{} : target.substr(cut);
      m.needs_slash = m.forward.empty() || m.forward[0] != '/';
    } else {
      m.forward = target;
    }
    if (!r.methods.empty()) {
      bool allowed = false;
      for (const std::string& x : r.methods) allowed = allowed || x == method;
      if (!allowed) {
        m.admission = Admission::method_not_allowed;
        return m;
      }
    }
    std::string_view path = m.forward.substr(0, m.forward.find('?'));
    if (r.kupo && !r.allow_writes && is_kupo_write(method, path)) {
      m.admission = Admission::write_blocked;
      return m;
    }
    m.admission = Admission::ok;
    return m;
  }
  return m;
}

}  // namespace lb
