#pragma once
// The pub/sub messages of the shared store (issue 15). pin_cas publishes a re-pin on
// `<prefix>pins` so every other instance drops its cached copy at once; quota_cool
// publishes a Blockfrost cool-down on `<prefix>quota`. Each names the instance that sent it,
// so the sender skips its own. Another instance (or another corral version) may have
// written a message, so decoding trusts nothing.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lb/core/session_key.h"

namespace lb {

// "<32 hex>|<old backend>|<new backend>|<instance>"; the hex is pin_key_text's (hi first).
struct PinMoved {
  SessionKey key;
  std::string from;  // may be empty: the key was missing in the store
  std::string to;
  std::string instance;
  bool operator==(const PinMoved&) const = default;
};
std::string encode_pin_moved(const PinMoved& m);
std::optional<PinMoved> decode_pin_moved(std::string_view msg);

// "<pool>|<status>|<until_unix_ms>|<instance>".
struct QuotaCooled {
  std::string pool;
  int status = 0;  // 402, 418 or 429
  uint64_t until_unix_ms = 0;
  std::string instance;
  bool operator==(const QuotaCooled&) const = default;
};
std::string encode_quota_cooled(const QuotaCooled& m);
std::optional<QuotaCooled> decode_quota_cooled(std::string_view msg);

// The 32 lower- or upper-case hex digits of pin_key_text (hi then lo); nullopt otherwise.
std::optional<SessionKey> parse_key_hex(std::string_view hex);

}  // namespace lb
