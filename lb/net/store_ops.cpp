#include "lb/net/store_ops.h"

#include "lb/core/pin_codec.h"
#include "lb/core/store_messages.h"
#include "lb/core/store_scripts.h"
#include "lb/net/runtime.h"

namespace lb::net {

std::vector<std::string> store_script_bodies() {
  namespace s = store_scripts;
  // Must follow StoreScript's order: a link's script index is its position here.
  return {std::string(s::pin_claim),  std::string(s::pin_cas),    std::string(s::pin_touch),
          std::string(s::fleet_sync), std::string(s::quota_take), std::string(s::quota_cool)};
}

ClaimArgs claim_args(std::string_view prefix, const SessionKey& key, std::string value,
                     uint64_t ttl_ms) {
  return ClaimArgs{pin_key_text(prefix, key), std::move(value), std::to_string(ttl_ms)};
}

CasArgs cas_args(std::string_view prefix, const SessionKey& key, std::string expected,
                 std::string value, std::string_view to, std::string_view instance,
                 uint64_t ttl_ms) {
  CasArgs a;
  a.key = pin_key_text(prefix, key);
  a.msg = encode_pin_moved(PinMoved{key, expected, std::string(to), std::string(instance)});
  a.expected = std::move(expected);
  a.value = std::move(value);
  a.ttl = std::to_string(ttl_ms);
  a.channel = std::string(prefix) + "pins";
  return a;
}

std::optional<SessionKey> key_of_pin_key(std::string_view pin_key) {
  if (pin_key.size() < 36 || pin_key.substr(pin_key.size() - 36, 4) != "pin:") return std::nullopt;
  return parse_key_hex(pin_key.substr(pin_key.size() - 32));
}

std::optional<PoolBackend> split_pool_backend(std::string_view name) {
  size_t slash = name.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == name.size())
    return std::nullopt;
  return PoolBackend{name.substr(0, slash), name.substr(slash + 1)};
}

std::optional<BackendRef> resolve_stored(const Runtime& rt, std::string_view pool,
                                         std::string_view backend) {
  for (const RuntimePool& p : rt.pools) {
    if (p.name != pool) continue;
    for (const RuntimeBackend& b : p.backends)
      if (b.name == backend) return b.ref;
    return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace lb::net
