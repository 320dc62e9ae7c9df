// pools.NAME.set_headers: header values injected upstream, taken from the environment
// or a file, never from the YAML itself.
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
    if (!h.v.IsMap()) {
      // Do not echo the value: this is exactly where someone pastes a key.
      error(h, "expected {env: VAR} or {file: PATH}; secrets are not written in the config");
      continue;
    }
    Map sm = as_map(h, {"env", "file"});
    const Entry* env = get(sm, "env");
    const Entry* file = get(sm, "file");
    if (env && file) {
      error(h, "give either env or file, not both");
      continue;
    }
    if (!env && !file) {
      if (sm.entries.size() == h.v.size()) error(h, "expected {env: VAR} or {file: PATH}");
      continue;
    }
    Secret s;
    std::string value;
    if (env) {
      if (!read_string(*env, s.env)) continue;
      if (!text::is_env_name(s.env)) {
        error(*env, "not a valid environment variable name");
        continue;
      }
      const char* v = std::getenv(s.env.c_str());
      if (!v) {
        error(*env, "environment variable '" + s.env + "' is not set");
        continue;
      }
      value = text::trim(v);
      if (value.empty()) {
        error(*env, "environment variable '" + s.env + "' is empty");
        continue;
      }
    } else {
      if (!read_string(*file, s.file)) continue;
      s.file = resolve(s.file);
      std::string raw;
      if (std::string why = text::read_small_file(s.file, raw); !why.empty()) {
        error(*file, "cannot read '" + s.file + "': " + why);
        continue;
      }
      value = text::trim(raw);
      if (value.empty()) {
        error(*file, "file '" + s.file + "' is empty");
        continue;
      }
    }
    if (text::has_control_chars(value)) {
      error(env ? *env : *file, "the secret holds a line break or control character");
      continue;
    }
    s.value = std::move(value);
    p.set_headers.emplace_back(h.key, std::move(s));
  }
}

}  // namespace config::detail
