#pragma once
// Readiness for systemd (Type=notify, sd_notify(3)): READY=1 once corral serves, RELOADING=1
// and READY=1 around a SIGHUP reload, STOPPING=1 when a stop begins, with a STATUS= line
// that `systemctl status` shows. Without NOTIFY_SOCKET every call does nothing.
#include <cstdint>
#include <string>

namespace lb::net {

// READY=1 with STATUS=status.
void notify_ready(const std::string& status);
// RELOADING=1 with MONOTONIC_USEC= (systemd 253+ matches it against the reload it asked
// for; older ones ignore it) and STATUS=status.
void notify_reloading(const std::string& status);
// STOPPING=1 with STATUS=status and EXTEND_TIMEOUT_USEC= of need_ms (systemd 236+: the
// stop may take that long from now, whatever TimeoutStopSec= says; older ones ignore it).
void notify_stopping(const std::string& status, uint64_t need_ms);
// EXTEND_TIMEOUT_USEC= of need_ms alone: start-up may take that long from now.
void notify_extend(uint64_t need_ms);

// The notification text for a state line and a status: "STATE\nSTATUS=..." with newlines
// in status replaced (a newline would start another assignment). Pure; for tests.
std::string notify_message(const std::string& state, const std::string& status);

}  // namespace lb::net
