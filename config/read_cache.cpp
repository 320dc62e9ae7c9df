// pools.NAME.cache: the pool's immutable-response cache and request collapsing (issue 16;
// README "Cache"). Kupo pools have built-in rules; every kind may list operator prefixes.
#include <set>

#include "config/loader_impl.h"
#include "config/text.h"

namespace config::detail {
namespace {

constexpr uint64_t kMinCacheBytes = 1ull << 20;   // 1MB: below it no Kupo answer would fit
constexpr uint64_t kMaxCacheBytes = 64ull << 30;  // 64GB
constexpr uint64_t kMaxImmutableSlots = 10'000'000;
constexpr uint64_t kMinMaxAgeMs = 1000;                       // 1s
constexpr uint64_t kMaxMaxAgeMs = 365ull * 24 * 3600 * 1000;  // 365d
constexpr size_t kMaxPrefixes = 64;  // each request is matched against every one

const char* kind_name(PoolKind k) {
  switch (k) {
    case PoolKind::kupo:
      return "kupo";
    case PoolKind::ogmios:
      return "ogmios";
    case PoolKind::blockfrost:
      return "blockfrost";
    case PoolKind::http:
      return "http";
  }
  return "?";
}

// The scalar as written, quoted, for messages that echo the offending value.
std::string written(const Entry& e) {
  return e.v.IsScalar() ? text::quoted(e.v.Scalar()) : std::string("a non-scalar value");
}

}  // namespace

// Reads `cache:` into `out`. The kind decides what may be said: Ogmios answers POST and
// WebSocket only, so a cache there would never store anything; http and Blockfrost have no
// built-in immutable answers, so without prefixes the key would do nothing. Both are
// refused rather than ignored. False (errors recorded) when the mapping is unusable.
bool Loader::parse_cache(const Entry& e, PoolKind kind, bool kind_known, CacheConfig& out) {
  Map m = as_map(e, {"max_bytes", "immutable_after_slots", "prefixes", "max_age", "collapse"});
  if (!m.ok) return false;
  size_t before = errors_.size();
  CacheConfig c;
  if (const Entry* v = get(m, "max_bytes"))
    read_size(*v, c.max_bytes, kMinCacheBytes, kMaxCacheBytes);
  if (const Entry* v = get(m, "immutable_after_slots")) {
    std::optional<uint64_t> n;
    if (v->v.IsScalar()) n = text::parse_uint(v->v.Scalar());
    if (!n || *n < 1 || *n > kMaxImmutableSlots)
      error(*v, "bad immutable_after_slots " + written(*v) + ": expected an integer from 1 to " +
                    std::to_string(kMaxImmutableSlots) +
                    " (129600 on mainnet and preprod, 25920 on preview)");
    else
      c.immutable_after_slots = *n;
    if (kind_known && kind != PoolKind::kupo)
      add(v->key_pos, v->path,
          "'immutable_after_slots' applies only to kind: kupo; this pool's kind (" +
              std::string(kind_name(kind)) + ") never reads it");
  }
  const Entry* prefixes = get(m, "prefixes");
  if (prefixes) {
    if (auto list = as_list(*prefixes)) {
      if (list->size() > kMaxPrefixes)
        error(*prefixes, "at most " + std::to_string(kMaxPrefixes) + " cache prefixes, got " +
                             std::to_string(list->size()));
      std::set<std::string> seen;
      for (const Entry& pe : *list) {
        std::string p;
        if (!read_string(pe, p)) continue;
        if (p.front() != '/' || p.find('?') != std::string::npos ||
            p.find(' ') != std::string::npos || text::has_control_chars(p))
          error(pe, "bad cache prefix " + text::quoted(p) +
                        ": expected a path starting with '/', without '?' or spaces");
        else if (!seen.insert(p).second)
          error(pe, "duplicate cache prefix " + text::quoted(p));
        else
          c.prefixes.push_back(std::move(p));
      }
    }
  }
  // A prefixes value that is not a list was refused above; only an absent or empty list
  // leaves max_age (and a non-Kupo cache) with nothing to apply to.
  bool no_prefixes = !prefixes || (prefixes->v.IsSequence() && prefixes->v.size() == 0);
  const Entry* max_age = get(m, "max_age");
  if (max_age) {
    uint64_t ms = 0;
    if (read_duration(*max_age, ms)) {
      if (ms < kMinMaxAgeMs || ms > kMaxMaxAgeMs)
        error(*max_age, "bad max_age " + written(*max_age) + ": expected from 1s to 365d");
      else
        c.max_age_ms = ms;
    }
    if (no_prefixes)
      add(max_age->key_pos, max_age->path,
          "max_age applies to prefixes; list cache prefixes or remove max_age (got max_age: " +
              written(*max_age) + ")");
  } else if (!no_prefixes && prefixes->v.IsSequence()) {
    add(prefixes->key_pos, prefixes->path,
        "cache prefixes need max_age: how long an answer under them is served from the cache");
  }
  if (const Entry* v = get(m, "collapse")) {
    std::string s = v->v.IsScalar() ? v->v.Scalar() : "";
    if (s == "true" || s == "false")
      c.collapse = s == "true";
    else
      error(*v, "bad collapse " + written(*v) + ": expected true or false");
  }
  if (kind_known && kind == PoolKind::ogmios) {
    add(e.key_pos, e.path,
        "cache does not apply to kind: ogmios: it answers POST and WebSocket only; remove it");
  } else if (kind_known && kind != PoolKind::kupo && no_prefixes) {
    add(e.key_pos, e.path,
        std::string("corral knows no immutable answers of kind ") + kind_name(kind) +
            "; list prefixes (with max_age) to cache under them, or remove cache");
  }
  if (errors_.size() != before) return false;
  out = std::move(c);
  return true;
}

}  // namespace config::detail
