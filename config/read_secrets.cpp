// pools.NAME.set_headers: header values injected upstream, and the secrets other sections
// use (sticky.store.password), taken from the environment or a file, never from the YAML
// itself.
#include <algorithm>
#include <cstdlib>

#include "config/loader_impl.h"
#include "config/text.h"

namespace config::detail {

// Header values come from the environment or a file, resolved now so that a missing
// secret fails the load (and a reload) instead of the first request. Error messages
// name the variable or file, never the value.
void Loader::parse_set_headers(const Entry& e, Pool& p) {
  Map m = as_name_map(e);
  std::vector<std::string> names;  // header names are case-insensitive
  for (const Entry& h : m.entries) {
    if (!text::is_token(h.key)) {
      add(h.key_pos, h.path, "not a valid header name");
      continue;
    }
    for (std::string_view framing :
         {"content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}) {
      if (text::iequals(h.key, framing)) {
        add(h.key_pos, h.path, "'" + h.key + "' controls message framing and cannot be set");
        break;
      }
    }
    if (std::any_of(names.begin(), names.end(),
                    [&](const auto& n) { return text::iequals(n, h.key); }))
      add(h.key_pos, h.path, "header '" + h.key + "' is set twice");
    names.push_back(h.key);
    Secret s;
    if (read_secret(h, s)) p.set_headers.emplace_back(h.key, std::move(s));
  }
}

// A secret written as {env: VAR} or {file: PATH} (set_headers, sticky.store.password),
// resolved now so that a missing one fails the load (and a reload) instead of the first use.
// Error messages name the variable or file, never the value.
bool Loader::read_secret(const Entry& h, Secret& out) {
  if (!h.v.IsMap()) {
    // Do not echo the value: this is exactly where someone pastes a key.
    error(h, "expected {env: VAR} or {file: PATH}; secrets are not written in the config");
    return false;
  }
  Map sm = as_map(h, {"env", "file"});
  const Entry* env = get(sm, "env");
  const Entry* file = get(sm, "file");
  if (env && file) {
    error(h, "give either env or file, not both");
    return false;
  }
  if (!env && !file) {
    if (sm.entries.size() == h.v.size()) error(h, "expected {env: VAR} or {file: PATH}");
    return false;
  }
  Secret s;
  std::string value;
  if (env) {
    if (!read_string(*env, s.env)) return false;
    if (!text::is_env_name(s.env)) {
      error(*env, "not a valid environment variable name");
      return false;
    }
    const char* v = std::getenv(s.env.c_str());
    if (!v) {
      error(*env, "environment variable '" + s.env + "' is not set");
      return false;
    }
    value = text::trim(v);
    if (value.empty()) {
      error(*env, "environment variable '" + s.env + "' is empty");
      return false;
    }
  } else {
    if (!read_string(*file, s.file)) return false;
    s.file = resolve(s.file);
    std::string raw;
    if (std::string why = text::read_small_file(s.file, raw); !why.empty()) {
      error(*file, "cannot read '" + s.file + "': " + why);
      return false;
    }
    value = text::trim(raw);
    if (value.empty()) {
      error(*file, "file '" + s.file + "' is empty");
      return false;
    }
  }
  if (text::has_control_chars(value)) {
    error(env ? *env : *file, "the secret holds a line break or control character");
    return false;
  }
  s.value = std::move(value);
  out = std::move(s);
  return true;
}

}  // namespace config::detail

namespace config::detail {

// remove_headers: {request: [...], response: [...]}. Names are validated like set_headers;
// framing fields (and Host, which HTTP/1.1 requires) cannot be removed, and a request name
// that set_headers injects would remove corral's own value, so both are refused.
void Loader::parse_remove_headers(const Entry& e, Pool& p) {
  Map m = as_map(e, {"request", "response"});
  if (!m.ok) return;
  auto read_side = [&](const char* side, std::vector<std::string>& out) {
    const Entry* s = get(m, side);
    if (!s) return;
    auto items = as_list(*s);
    if (!items) return;
    for (const Entry& it : *items) {
      std::string name;
      if (!read_string(it, name)) continue;
      if (!text::is_token(name)) {
        error(it, "not a valid header name");
        continue;
      }
      const bool request = std::string_view(side) == "request";
      bool refused = request && text::iequals(name, "host");
      for (std::string_view framing :
           {"content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"})
        refused = refused || text::iequals(name, framing);
      if (refused) {
        error(it, "'" + name + "' is needed to frame or route the message and cannot be removed");
        continue;
      }
      if (std::any_of(out.begin(), out.end(),
                      [&](const auto& n) { return text::iequals(n, name); })) {
        error(it, "header '" + name + "' is listed twice");
        continue;
      }
      if (request && std::any_of(p.set_headers.begin(), p.set_headers.end(),
                                 [&](const auto& h) { return text::iequals(h.first, name); })) {
        error(it, "header '" + name +
                      "' is injected by set_headers (the client's copy is removed already)");
        continue;
      }
      out.push_back(std::move(name));
    }
  };
  read_side("request", p.remove_headers.request);
  read_side("response", p.remove_headers.response);
}

}  // namespace config::detail
