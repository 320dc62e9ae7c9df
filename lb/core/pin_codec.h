#pragma once
// The pin as the shared store (Redis, issue 15) holds it: a value
// `v1|<backend>|<last_slot>|<reason>` under the key `<prefix>pin:<32 hex>`. The backend goes by its
// configured name, never by BackendRef: refs are interned per process, names are the same on every
// instance. The pool needs no field: it is already folded into the SessionKey (pool_session_key).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lb/core/balancer.h"
#include "lb/core/session_key.h"

namespace lb {

struct StoredPin {
  std::string backend;
  uint64_t last_slot = 0;
  MoveReason reason = MoveReason::none;
  bool operator==(const StoredPin&) const = default;
};

// The stored value for a pin: "v1|kupo-2|139872001|down". `backend` must be non-empty and
// hold no '|' (read_pools' name rule guarantees both); the reason is move_reason_name().
std::string encode_pin(std::string_view backend, uint64_t slot, MoveReason reason);

// Parses a stored value; nullopt for another version, an empty backend, a '|' in it, a
// slot that is not a plain decimal uint64, or an unknown reason. Another instance (or an
// older/newer corral) may have written it, so nothing in it is trusted.
std::optional<StoredPin> decode_pin(std::string_view value);

// The store key of a session: prefix + "pin:" + key.hi and key.lo as 32 lower-case hex
// digits (hi first), e.g. "corral:pin:00ab...". Same on every instance for the same user.
std::string pin_key_text(std::string_view prefix, const SessionKey& key);

// The reason named by move_reason_name(); nullopt for an unknown name.
std::optional<MoveReason> move_reason_from_name(std::string_view name);

}  // namespace lb
