#pragma once
// The state file's format: the session table's pins as a compact, checksummed byte string,
// so that users keep their backend across a restart (DESIGN.md "Reload"). Pure: no I/O, no
// clock; lb/net/state_file.h reads and writes the bytes.
//
// Layout, all integers little-endian:
//   "CORRALPINS"                       magic, 10 bytes
//   u32 version                        kPinSnapshotVersion
//   u32 name_count, then name_count x  {u32 length, bytes}   distinct "pool/backend" names
//   u64 record_count, then record_count x
//     {u64 key.lo, u64 key.hi, u32 name index, u64 last_slot, u64 last_seen}   36 bytes each
//   u32 quota_count, then quota_count x {u32 length, pool name bytes, u64 day, u64 used}
//                                      (version 3 only: Blockfrost daily counts, by UTC day)
//   u64 XXH3-64 of every byte before it
// Backends are stored by name, not BackendRef, because refs are assigned per process and
// mean nothing after a restart. last_seen is wall-clock time (Unix ms, version 2), so the
// time corral was stopped counts toward a pin's ttl; version 1 stored the idle time at
// save instead, which only the file's own modification time can date. Version 3 adds the
// daily counts of rate-limited pools (lb/core/quota_guard.h); versions 1 and 2 are still
// read, with no counts.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/session_key.h"

namespace lb {

inline constexpr uint32_t kPinSnapshotVersion = 3;

struct PinRecord {
  SessionKey key;
  std::string backend;  // "pool/backend"
  uint64_t last_slot = 0;
  uint64_t last_seen_unix_ms = 0;  // wall clock (system_clock), not the monotonic one
  friend bool operator==(const PinRecord&, const PinRecord&) = default;
};

// One pool's daily request count on the UTC day it was counted.
struct QuotaRecord {
  std::string pool;
  uint64_t day = 0;  // days since 1970-01-01, UTC
  uint64_t used = 0;
  friend bool operator==(const QuotaRecord&, const QuotaRecord&) = default;
};

// Serialises pins and daily counts in the layout above, each backend name written once.
std::string encode_pins(const std::vector<PinRecord>& pins,
                        const std::vector<QuotaRecord>& quotas = {});

struct DecodeResult {
  std::vector<PinRecord> pins;
  std::vector<QuotaRecord> quotas;
  std::string error;  // empty on success; otherwise pins and quotas are empty
};

// Parses bytes written by encode_pins. Never reads past the end and never allocates more
// than the input's size could justify, so any file (truncated, corrupt, hostile) is safe
// to feed in; any problem yields no pins and an error naming it. A version 1 file's idle
// times are dated from `v1_saved_unix_ms` (its modification time); 0 refuses one.
DecodeResult decode_pins(std::string_view bytes, uint64_t v1_saved_unix_ms = 0);

// How long a pin has been idle at wall-clock time now_unix_ms, stops included; 0 when the
// clock reads earlier than the pin (a clock stepped back must not expire everything).
uint64_t pin_idle_ms(const PinRecord& pin, uint64_t now_unix_ms);

}  // namespace lb
