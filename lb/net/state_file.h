#pragma once
// Pins that survive a restart: the session table saved to a file on stop and loaded on
// start (config `state_file`, DESIGN.md "Reload"). The byte format is lb/core/pin_snapshot.h;
// this file does the I/O and maps backends between the table's per-process BackendRefs and
// their stable "pool/backend" names. Blocking file I/O: call from the control thread, at
// start before workers run and at stop after they drained, never on a worker loop.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lb/core/pin_snapshot.h"
#include "lb/core/session_table.h"

namespace lb::net {

// Writes all pins atomically: PATH.tmp, fsync, rename, fsync the directory, so that a
// crash at any point leaves either the old file or the new one, never a torn one. Entries
// whose backend name_of maps to "" are skipped (nothing could resolve them on load).
// Returns "" or the error text; on error the .tmp file is removed and PATH is unchanged.
// now_ms is the table's (monotonic) clock, now_unix_ms the wall clock at the same moment:
// each pin is stored with its wall-clock last-seen time. `quotas`, the daily counts of
// rate-limited pools, are stored with them (format version 3).
std::string save_pins(const std::string& path, const SessionTable& table,
                      const std::function<std::string(BackendRef)>& name_of, uint64_t now_ms,
                      uint64_t now_unix_ms, const std::vector<QuotaRecord>& quotas = {});

struct LoadReport {
  size_t loaded = 0;
  size_t dropped_unknown = 0;       // backend no longer configured
  size_t dropped_expired = 0;       // idle for ttl or longer
  std::string error;                // non-empty: the file was ignored
  bool missing = false;             // no file yet (first start): not an error
  std::vector<QuotaRecord> quotas;  // daily counts as saved (none from a version 1/2 file)
};

// Loads pins whose backend still exists (resolve returns nullopt for names no longer
// configured) and whose idle time at wall-clock now_unix_ms, the time corral was stopped
// included, is below ttl_ms. Last-seen is restored on the table's clock as now_ms - idle
// (clamped at 0) and last_slot via record_slot, so a restored pin expires when it would
// have had corral kept running. A version 1 file is dated by its modification time. A
// missing file is not an error (missing=true). A corrupt or truncated file is reported in
// error and ignored: the table is left untouched.
LoadReport load_pins(const std::string& path, SessionTable& table,
                     const std::function<std::optional<BackendRef>(std::string_view)>& resolve,
                     uint64_t now_ms, uint64_t now_unix_ms, uint64_t ttl_ms);

}  // namespace lb::net
