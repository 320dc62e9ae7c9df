#pragma once
// What the worker's StoreClient and the control loop's StoreControl both say to the shared
// pin store (plan-15 §2): the one table of Lua scripts (both links load the same list, so
// an index means the same script everywhere), the argument lists of pin_claim and pin_cas,
// and the translation of a stored "pool/backend" or backend name back to a BackendRef.
// One place, so the two sides cannot drift apart.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/backend_ref.h"
#include "lb/core/session_key.h"

namespace lb::net {

struct Runtime;

// The scripts' indexes in RedisLink::set_scripts(store_script_bodies()).
enum StoreScript : size_t { pin_claim, pin_cas, pin_touch, fleet_sync, quota_take, quota_cool };

// Every script body, in StoreScript order.
std::vector<std::string> store_script_bodies();

// pin_claim: KEYS = {key}, ARGV = {value, ttl_ms}. Owned strings: the views passed to
// RedisLink::evalsha point into them.
struct ClaimArgs {
  std::string key;
  std::string value;
  std::string ttl;
  std::vector<std::string_view> keys() const { return {key}; }
  std::vector<std::string_view> args() const { return {value, ttl}; }
};
ClaimArgs claim_args(std::string_view prefix, const SessionKey& key, std::string value,
                     uint64_t ttl_ms);

// pin_cas: KEYS = {key}, ARGV = {expected_backend, value, ttl_ms, channel, msg}; `msg` is
// the PinMoved the others receive on "<prefix>pins" (from `expected` to `to`).
struct CasArgs {
  std::string key;
  std::string expected;
  std::string value;
  std::string ttl;
  std::string channel;
  std::string msg;
  std::vector<std::string_view> keys() const { return {key}; }
  std::vector<std::string_view> args() const { return {expected, value, ttl, channel, msg}; }
};
CasArgs cas_args(std::string_view prefix, const SessionKey& key, std::string expected,
                 std::string value, std::string_view to, std::string_view instance,
                 uint64_t ttl_ms);

// The session key of a pin key "<prefix>pin:<32 hex>", whatever the prefix was when it was
// made (a queued write may outlive a reload); nullopt for anything else.
std::optional<SessionKey> key_of_pin_key(std::string_view pin_key);

// "pool/backend" (Registry::name_of) split at the first '/'; nullopt when either half is
// empty or there is no '/'.
struct PoolBackend {
  std::string_view pool;
  std::string_view backend;
};
std::optional<PoolBackend> split_pool_backend(std::string_view name);

// The ref of `backend` in `pool` only when the running configuration has it there now: the
// Registry never forgets a name, and a pin to a backend this instance no longer has (another
// instance runs a newer config) must not be adopted.
std::optional<BackendRef> resolve_stored(const Runtime& rt, std::string_view pool,
                                         std::string_view backend);

}  // namespace lb::net
