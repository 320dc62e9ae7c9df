// sticky: the key sources tried in order, and the pin table's bounds.
#include "config/loader_impl.h"
#include "config/text.h"

namespace config::detail {

void Loader::parse_sticky(const Map& root, Config& c) {
  const Entry* e = get(root, "sticky");
  bool keys_given = false;
  if (e) {
    Map m = as_map(*e, {"keys", "ttl", "max_sessions", "balance_factor", "hash"}, {"store"});
    if (const Entry* k = get(m, "keys")) {
      keys_given = true;
      if (auto keys = as_list(*k)) {
        if (keys->empty()) error(*k, "list at least one key source, or omit 'keys'");
        for (const Entry& ke : *keys) parse_key_source(ke, c.sticky);
      }
    }
    if (const Entry* t = get(m, "ttl")) read_duration(*t, c.sticky.ttl_ms);
    if (const Entry* s = get(m, "max_sessions")) read_uint(*s, c.sticky.max_sessions, 1, kU64Max);
    if (const Entry* b = get(m, "balance_factor"); b && read_number(*b, c.sticky.balance_factor)) {
      double f = c.sticky.balance_factor;
      if (f != 0 && f < 1.0) error(*b, "expected 0 (off) or a number >= 1.0");
    }
    if (const Entry* h = get(m, "hash")) {
      size_t i = 0;
      if (read_choice(*h, {"rendezvous", "maglev"}, i))
        c.sticky.hash = i == 0 ? lb::SelectorKind::rendezvous : lb::SelectorKind::maglev;
    }
  }
  if (!keys_given) c.sticky.keys = {lb::ExtractorSpec{lb::KeySource::client_ip, ""}};
}

void Loader::parse_key_source(const Entry& e, Sticky& s) {
  Map m = as_map(e, {"from", "prefix", "name"});
  if (!m.ok) return;
  const Entry* from = get(m, "from", true);
  size_t i = 0;
  if (!from || !read_choice(*from, {"path", "cookie", "header", "address", "client_ip"}, i)) return;
  static constexpr lb::KeySource kSources[] = {lb::KeySource::path, lb::KeySource::cookie,
                                               lb::KeySource::header, lb::KeySource::address,
                                               lb::KeySource::client_ip};
  lb::ExtractorSpec spec{kSources[i], ""};
  const Entry* prefix = get(m, "prefix");
  const Entry* name = get(m, "name");
  bool takes_prefix = spec.from == lb::KeySource::path;
  bool takes_name = spec.from == lb::KeySource::cookie || spec.from == lb::KeySource::header;
  if (prefix && !takes_prefix) error(*prefix, "'prefix' applies only to from: path");
  if (name && !takes_name) error(*name, "'name' applies only to from: cookie or header");
  if (takes_prefix) {
    spec.arg = "/s/";
    if (prefix && read_string(*prefix, spec.arg)) {
      // The token is the path segment right after the prefix.
      if (spec.arg.front() != '/' || spec.arg.back() != '/' || spec.arg.size() < 2)
        error(*prefix, "a path key prefix must start and end with '/', like /s/");
    }
  }
  if (takes_name) {
    if (!name)
      add(m.pos, join(m.path, "name"), "required key is missing");
    else if (read_string(*name, spec.arg) && !text::is_token(spec.arg))
      error(*name, "not a valid " + std::string(i == 1 ? "cookie" : "header") + " name");
  }
  s.keys.push_back(std::move(spec));
}

}  // namespace config::detail
