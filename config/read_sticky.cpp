// sticky: the key sources tried in order, and the pin table's bounds.
#include "config/loader_impl.h"
#include "config/text.h"

namespace config::detail {

void Loader::parse_sticky(const Map& root, Config& c) {
  const Entry* e = get(root, "sticky");
  bool keys_given = false;
  if (e) {
    Map m = as_map(*e, {"keys", "ttl", "max_sessions", "balance_factor", "hash", "store"});
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
    if (const Entry* st = get(m, "store")) parse_store(*st, c.sticky);
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

namespace {

// "5s" for an error message; whole units where they fit.
std::string duration_text(uint64_t ms) {
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace

// sticky.store: the Redis that several instances share their pins through (issue 15). The
// host is resolved later, on the control thread (build_runtime), so `corral -t` never needs
// Redis; the password is read now like set_headers' secrets and never echoed.
void Loader::parse_store(const Entry& e, Sticky& s) {
  Map m = as_map(e, {"redis", "prefix", "timeout", "password", "sync_interval", "max_pending"});
  if (!m.ok) return;
  StickyStore st;
  bool ok = true;
  if (const Entry* r = get(m, "redis", true)) {
    Address a;
    if (read_address(*r, a)) {
      st.redis = a.text;
      st.host = a.host;
      st.port = a.port;
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (const Entry* p = get(m, "prefix")) {
    // Part of every key name: a space or control byte would split a command or a log line.
    const std::string v = p->v.IsScalar() ? p->v.Scalar() : "";
    bool printable = !v.empty() && v.size() <= 64;
    for (unsigned char ch : v) printable = printable && ch > 0x20 && ch < 0x7f;
    if (!p->v.IsScalar() || !printable) {
      error(*p, "bad prefix " + text::quoted(v) +
                    ": expected 1 to 64 printable characters without spaces, like \"corral:\"");
      ok = false;
    } else {
      st.prefix = v;
    }
  }
  // A duration within [lo, hi]; the range goes in the message with the value written.
  auto duration_in = [&](const char* key, uint64_t& out, uint64_t lo, uint64_t hi) {
    const Entry* d = get(m, key);
    if (!d) return;
    uint64_t v = 0;
    if (!read_duration(*d, v)) {
      ok = false;
      return;
    }
    if (v < lo || v > hi) {
      error(*d, "bad duration " + text::quoted(d->v.Scalar()) + ": expected from " +
                    duration_text(lo) + " to " + duration_text(hi));
      ok = false;
      return;
    }
    out = v;
  };
  duration_in("timeout", st.timeout_ms, 1, 5000);
  duration_in("sync_interval", st.sync_interval_ms, 100, 300'000);
  if (const Entry* p = get(m, "password"); p && !read_secret(*p, st.password)) ok = false;
  if (const Entry* n = get(m, "max_pending")) {
    constexpr uint64_t kMax = 10'000'000;
    std::optional<uint64_t> v;
    if (n->v.IsScalar()) v = text::parse_uint(n->v.Scalar());
    if (!v || *v > kMax) {
      error(*n, "bad max_pending " + text::quoted(n->v.IsScalar() ? n->v.Scalar() : "") +
                    ": expected an integer from 0 (do not queue) to " + std::to_string(kMax));
      ok = false;
    } else {
      st.max_pending = *v;
    }
  }
  if (ok) s.store = std::move(st);
}

}  // namespace config::detail
