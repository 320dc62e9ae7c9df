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
//     {u64 key.lo, u64 key.hi, u32 name index, u64 last_slot, u64 idle_ms}   36 bytes each
//   u64 XXH3-64 of every byte before it
// Backends are stored by name, not BackendRef, because refs are assigned per process and
// mean nothing after a restart; idle time rather than last-seen because the monotonic
// clock restarts too.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/session_key.h"

namespace lb {

inline constexpr uint32_t kPinSnapshotVersion = 1;

struct PinRecord {
  SessionKey key;
  std::string backend;  // "pool/backend"
  uint64_t last_slot = 0;
  uint64_t idle_ms = 0;
  friend bool operator==(const PinRecord&, const PinRecord&) = default;
};

// Serialises pins in the layout above, each backend name written once.
std::string encode_pins(const std::vector<PinRecord>& pins);

struct DecodeResult {
  std::vector<PinRecord> pins;
  std::string error;  // empty on success; otherwise pins is empty
};

// Parses bytes written by encode_pins. Never reads past the end and never allocates more
// than the input's size could justify, so any file (truncated, corrupt, hostile) is safe
// to feed in; any problem yields no pins and an error naming it.
DecodeResult decode_pins(std::string_view bytes);

}  // namespace lb
