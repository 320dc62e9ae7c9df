#pragma once
// Applies the config's log: section (README "Logs") to the event log and the access log.
#include "config/config.h"

namespace lb::net {

// At start (before the first line the config could change) and after each reload: the
// event lines' format and level, and the access log on/off, its format and its file
// (a new access_file is opened before the next access line; see access_log.h).
void apply_log_config(const config::LogSettings& s);

}  // namespace lb::net
