// pools: kind, backends, health, ejection, timeouts, slow start.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "config/loader_impl.h"
#include "config/text.h"

namespace config::detail {
namespace {

// "" when `path` is a readable file holding at least one PEM certificate, else why not.
// Bundles can be large (a system store is ~200 KB): read in pieces, at most 16 MB.
std::string pem_certificate_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return std::strerror(errno);
  std::string text;
  char chunk[16384];
  size_t n = 0;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0 && text.size() < (16u << 20))
    text.append(chunk, n);
  bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) return "read error";
  if (text.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    return "no PEM certificate in it";
  return "";
}

}  // namespace

void Loader::parse_pools(const Map& root, Config& c) {
  const Entry* e = get(root, "pools");
  if (!e) return;
  Map m = as_name_map(*e);
  if (!m.ok) {
    pools_ok_ = false;  // routes cannot be checked against a broken pool map
    return;
  }
  for (const Entry& pe : m.entries) {
    pool_names_.push_back(pe.key);
    if (!text::is_name(pe.key))
      add(pe.key_pos, pe.path, "expected a pool name of letters, digits, '-', '_' or '.'");
    parse_pool(pe, c);
  }
}

void Loader::parse_pool(const Entry& e, Config& c) {
  Pool p;
  p.name = e.key;
  Map m = as_map(e, {"kind", "backends", "health", "eject", "timeouts", "set_headers", "slow_start",
                     "remove_headers", "resolve_interval", "rate_limit", "cache"});
  if (!m.ok) {
    c.pools.push_back(std::move(p));
    return;
  }
  bool kind_known = false;
  if (const Entry* k = get(m, "kind", true)) {
    size_t i = 0;
    if (read_choice(*k, {"kupo", "ogmios", "blockfrost", "http"}, i)) {
      p.kind = static_cast<PoolKind>(i);
      kind_known = true;
    }
  }
  const Entry* b = get(m, "backends");
  if (!b) {
    add(m.pos, join(m.path, "backends"), "a pool needs at least one backend");
  } else if (auto backends = as_list(*b)) {
    if (backends->empty()) error(*b, "a pool needs at least one backend");
    for (const Entry& be : *backends) parse_backend(be, p);
  }
  if (const Entry* h = get(m, "health")) parse_health(*h, p.kind, kind_known, p.health);
  if (const Entry* x = get(m, "eject")) parse_eject(*x, p.eject);
  if (const Entry* t = get(m, "timeouts")) {
    Map tm = as_map(*t, {"connect", "response"});
    if (const Entry* v = get(tm, "connect")) read_duration(*v, p.timeouts.connect_ms);
    if (const Entry* v = get(tm, "response")) read_duration(*v, p.timeouts.response_ms);
  }
  if (const Entry* s = get(m, "set_headers")) parse_set_headers(*s, p);
  if (const Entry* s = get(m, "remove_headers")) parse_remove_headers(*s, p);
  if (const Entry* s = get(m, "slow_start")) read_duration(*s, p.slow_start_ms, true);
  if (const Entry* r = get(m, "resolve_interval");
      r && read_duration(*r, p.resolve_interval_ms) && p.resolve_interval_ms < 1000)
    error(*r, "resolve_interval must be at least 1s");
  if (const Entry* r = get(m, "rate_limit")) parse_rate_limit(*r, p);
  if (const Entry* x = get(m, "cache")) {
    CacheConfig cc;
    if (parse_cache(*x, p.kind, kind_known, cc)) p.cache = std::move(cc);
  }
  c.pools.push_back(std::move(p));
}

// rate_limit: {rps, burst, daily} (the Blockfrost quota guard, lb/core/quota_guard.h).
// burst without rps, or a limit that limits nothing, is refused rather than ignored;
// burst defaults to one second's worth (at least 1). A daily quota needs the state file
// to survive a restart, checked once the whole file is read (check_daily_state_file).
void Loader::parse_rate_limit(const Entry& e, Pool& p) {
  Map m = as_map(e, {"rps", "burst", "daily"});
  if (!m.ok) return;
  RateLimit rl;
  bool ok = true;
  const Entry* rps = get(m, "rps");
  const Entry* burst = get(m, "burst");
  const Entry* daily = get(m, "daily");
  if (rps) {
    if (!read_number(*rps, rl.rps))
      ok = false;
    else if (!(rl.rps > 0 && rl.rps <= 1e6)) {
      error(*rps, "rate_limit.rps must be above 0 and at most 1000000");
      ok = false;
    }
  }
  if (burst) {
    if (!read_number(*burst, rl.burst))
      ok = false;
    else if (!(rl.burst >= 1 && rl.burst <= 1e9)) {
      error(*burst, "rate_limit.burst must be between 1 and 1000000000");
      ok = false;
    }
  }
  if (daily && !read_uint(*daily, rl.daily, 1, kU64Max)) ok = false;
  if (burst && !rps) {
    error(*burst, "rate_limit.burst needs rate_limit.rps");
    ok = false;
  }
  if (!rps && !daily && !burst) {
    add(m.pos, m.path, "rate_limit needs rps or daily");
    ok = false;
  }
  if (!ok) return;
  if (rps && !burst) rl.burst = std::max(1.0, rl.rps);
  if (daily) daily_keys_.push_back(*daily);
  p.rate_limit = rl;
}

void Loader::check_daily_state_file(const Config& c) {
  if (!c.state_file.empty()) return;
  for (const Entry& d : daily_keys_)
    error(d,
          "rate_limit.daily needs state_file: the day's count must survive a restart, or "
          "every restart would hand out a fresh quota");
}

void Loader::parse_backend(const Entry& e, Pool& p) {
  Map m = as_map(e, {"name", "address", "weight", "tls"});
  if (!m.ok) return;
  Backend b;
  if (const Entry* n = get(m, "name", true); n && read_name(*n, b.name)) {
    // Backend names are global identities: pins and metrics key on them.
    auto [it, fresh] = backend_names_.emplace(b.name, e.path);
    if (!fresh) error(*n, "duplicate backend name '" + b.name + "' (also " + it->second + ")");
  }
  if (const Entry* a = get(m, "address", true)) read_address(*a, b.address);
  if (const Entry* w = get(m, "weight")) read_uint(*w, b.weight, 1, 1000);
  if (const Entry* t = get(m, "tls")) parse_backend_tls(*t, b);
  p.backends.push_back(std::move(b));
}

// `tls: true|false`, or `tls: {ca: FILE, server_name: NAME}` (TLS on, verified against
// that CA file and name). The CA file is read now, so a missing or non-PEM file is a
// config error rather than every connection failing later.
void Loader::parse_backend_tls(const Entry& e, Backend& b) {
  if (!e.v.IsMap()) {
    read_bool(e, b.tls);
    return;
  }
  Map m = as_map(e, {"ca", "server_name"});
  if (!m.ok) return;
  b.tls = true;
  if (const Entry* ca = get(m, "ca"); ca && read_string(*ca, b.tls_ca)) {
    b.tls_ca = resolve(b.tls_ca);
    if (std::string why = pem_certificate_file(b.tls_ca); !why.empty())
      error(*ca, "cannot use '" + b.tls_ca + "': " + why);
  }
  if (const Entry* n = get(m, "server_name"); n && read_string(*n, b.tls_server_name)) {
    if (!text::is_name(b.tls_server_name) || b.tls_server_name.size() > 253)
      error(*n, "expected a host name of letters, digits, '-', '_' or '.'");
  }
}

// Probe keys that the pool's kind never reads are refused rather than ignored: only an
// http probe has a path and an expected status, only Kupo and Ogmios report a tip to lag
// behind, and only Kupo reports the age of its last block.
void Loader::parse_health(const Entry& e, PoolKind kind, bool kind_known, Health& h) {
  Map m = as_map(e, {"interval", "timeout", "rise", "fall", "max_lag_slots", "stale_after", "path",
                     "expect_status", "move_lag_slots", "fork_depth_slots"});
  if (!m.ok) return;
  const Entry* interval = get(m, "interval");
  const Entry* timeout = get(m, "timeout");
  bool ok = true;
  if (interval) ok &= read_duration(*interval, h.interval_ms);
  if (timeout) ok &= read_duration(*timeout, h.timeout_ms);
  // A probe that may outlive its period would overlap the next one.
  if (ok && (interval || timeout) && h.timeout_ms >= h.interval_ms) {
    const Entry& at = timeout ? *timeout : *interval;
    error(at, "health.timeout (" + std::to_string(h.timeout_ms) +
                  "ms) must be less than health.interval (" + std::to_string(h.interval_ms) +
                  "ms)");
  }
  if (const Entry* v = get(m, "rise")) read_uint(*v, h.rise, 1, kU32Max);
  if (const Entry* v = get(m, "fall")) read_uint(*v, h.fall, 1, kU32Max);
  if (const Entry* v = get(m, "max_lag_slots")) read_uint(*v, h.max_lag_slots, 0, kU64Max);
  if (const Entry* v = get(m, "stale_after")) read_duration(*v, h.stale_after_ms);
  // Issue 13: moving pinned users needs a worse lag than refusing new ones; a fork check
  // deeper than the stability window (129600 slots on mainnet) finds no checkpoints.
  if (const Entry* v = get(m, "move_lag_slots")) {
    uint64_t n = 0;
    if (read_uint(*v, n, 0, kU64Max)) {
      if (n < h.max_lag_slots)
        error(*v, "move_lag_slots (" + std::to_string(n) + ") must be at least max_lag_slots (" +
                      std::to_string(h.max_lag_slots) + ")");
      h.move_lag_slots = n;
    }
  }
  if (const Entry* v = get(m, "fork_depth_slots")) read_uint(*v, h.fork_depth_slots, 1, 129600);
  if (const Entry* v = get(m, "path"); v && read_string(*v, h.path)) {
    if (h.path.front() != '/' || text::has_control_chars(h.path) ||
        h.path.find(' ') != std::string::npos)
      error(*v, "a health path must start with '/' and hold no spaces");
  }
  if (const Entry* v = get(m, "expect_status")) read_uint(*v, h.expect_status, 100, 599);
  if (!kind_known) return;
  bool has_tip = kind == PoolKind::kupo || kind == PoolKind::ogmios;
  auto only = [&](std::string_view key, bool applies, const char* kinds) {
    if (const Entry* v = get(m, key); v && !applies)
      add(v->key_pos, v->path,
          "'" + std::string(key) + "' applies only to kind: " + kinds +
              "; this pool's kind never reads it");
  };
  only("path", kind == PoolKind::http, "http");
  only("expect_status", kind == PoolKind::http, "http");
  only("max_lag_slots", has_tip, "kupo or ogmios");
  only("stale_after", kind == PoolKind::kupo, "kupo");
  only("move_lag_slots", has_tip, "kupo or ogmios");
  // Ogmios backends are compared where their tips coincide, never at a depth.
  only("fork_depth_slots", kind == PoolKind::kupo, "kupo");
}

void Loader::parse_eject(const Entry& e, Eject& x) {
  Map m = as_map(e, {"consecutive_503", "base_time", "max_time", "max_percent"});
  if (!m.ok) return;
  if (const Entry* v = get(m, "consecutive_503")) read_uint(*v, x.consecutive_503, 1, kU32Max);
  const Entry* base = get(m, "base_time");
  const Entry* max = get(m, "max_time");
  bool ok = true;
  if (base) ok &= read_duration(*base, x.base_time_ms);
  if (max) ok &= read_duration(*max, x.max_time_ms);
  if (ok && (base || max) && x.base_time_ms > x.max_time_ms)
    error(base ? *base : *max, "eject.base_time must not exceed eject.max_time");
  if (const Entry* v = get(m, "max_percent")) read_uint(*v, x.max_percent, 0, 100);
}

}  // namespace config::detail
