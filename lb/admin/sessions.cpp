#include "lb/admin/sessions.h"

#include <optional>

#include "lb/admin/json_writer.h"
#include "lb/core/balancer.h"
#include "lb/net/access_log.h"

namespace lb::admin {
namespace {

// The 16 hex digits of an access-log session value, lower-cased; nullopt otherwise.
std::optional<std::string> normal_hash(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  return out;
}

std::string error(std::string_view why) {
  JsonWriter j;
  j.begin_object().key("error").value(why).end_object();
  return j.str() + "\n";
}

}  // namespace

SessionsAnswer session_lookup(std::string_view hash, const SessionTable& table,
                              const net::Registry& registry, uint64_t seed, uint64_t now_ms,
                              uint64_t wall_ms) {
  std::optional<std::string> want = normal_hash(hash);
  if (!want)
    return {400, error("expected /sessions/<hash>: the 16 hex digits of an access-log "
                       "line's session field")};
  struct Found {
    Pin pin;
    uint64_t last_seen_ms = 0;
  };
  std::optional<Found> found;
  table.for_each([&](const SessionKey& key, const Pin& pin, uint64_t last_seen_ms) {
    if (!found && net::session_hash_hex(key, seed) == *want) found = Found{pin, last_seen_ms};
  });
  if (!found)
    return {404, error("no session with this hash: never seen, expired, or from before a "
                       "restart (hashes are keyed per process)")};

  // "pool/backend", as the registry names its refs.
  const std::string name = registry.name_of(found->pin.backend);
  const size_t slash = name.find('/');
  const uint64_t idle = now_ms > found->last_seen_ms ? now_ms - found->last_seen_ms : 0;
  JsonWriter j;
  j.begin_object().key("session").value(*want);
  j.key("pool").value(std::string_view(name).substr(0, slash));
  j.key("backend").value(slash == std::string::npos ? std::string_view()
                                                    : std::string_view(name).substr(slash + 1));
  j.key("last_slot");
  if (found->pin.last_slot != 0)
    j.value(found->pin.last_slot);
  else
    j.null();
  j.key("idle_ms").value(idle);
  j.key("last_seen_unix_ms").value(wall_ms > idle ? wall_ms - idle : uint64_t{0});
  j.key("last_move");
  if (found->pin.last_move != 0)
    j.value(move_reason_name(static_cast<MoveReason>(found->pin.last_move)));
  else
    j.null();
  j.end_object();
  return {200, j.str() + "\n"};
}

}  // namespace lb::admin
