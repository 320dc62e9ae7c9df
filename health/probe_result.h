#pragma once
// Parsers for the health answers of each backend kind (DESIGN.md "Why it exists"), pure.
// They turn (status, body) into a level and whatever chain position the answer carries.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lb/core/backend_state.h"

namespace health {

struct ProbeResult {
  lb::BackendState level = lb::BackendState::down;
  std::optional<uint64_t> tip_slot;       // the slot the backend has reached
  std::optional<uint64_t> node_tip_slot;  // Kupo: its node's tip
  std::optional<std::string> tip_hash;    // Ogmios: lastKnownTip's header hash
  std::optional<double> seconds_since_last_block;
  std::string detail;  // short human text for /status, e.g. "202 behind (sync 0.98)"
};

// Kupo GET /health (Accept: application/json): 200 connected+synced -> up, 202 behind ->
// draining, 503 disconnected -> down; reads most_recent_checkpoint, most_recent_node_tip,
// seconds_since_last_block.
ProbeResult parse_kupo_health(int status, std::string_view body);
// Ogmios GET /health: 200 -> up, 202 -> draining, 500 or other -> down; reads
// lastKnownTip.slot and .id (v5: .hash), networkSynchronization.
ProbeResult parse_ogmios_health(int status, std::string_view body);
// Blockfrost GET /health: 200 with {"is_healthy": true} -> up, else down.
ProbeResult parse_blockfrost_health(int status, std::string_view body);
// Plain HTTP: status == expect -> up, else down.
ProbeResult parse_http_health(int status, int expect);
// No answer (refused, timeout, garbage): down with the reason as detail.
ProbeResult probe_failed(std::string_view why);
// Kupo GET /checkpoints/{slot}: the point {slot_no, header_hash} as "slot:hash", or
// nothing for null, an error status or an unreadable body.
std::optional<std::string> parse_kupo_checkpoint(int status, std::string_view body);

}  // namespace health
