#pragma once
// What a reload changes (DESIGN.md "Layout": config/ holds "diff old->new"), for the
// reload's log line: pools, backends, routes, listeners and injected header names added,
// removed or changed. Names only: a secret's value never appears, and a secret whose value
// changed shows as "changed" without it.
#include <string>
#include <vector>

#include "config/config.h"

namespace config {

// One entry per change, e.g. "backend kupo/kupo-3 added", "listener extra removed",
// "route public /kupo/ changed", "injected header blockfrost/project_id added",
// "sticky.store changed" (its password included, never shown), in a
// stable order (pools, backends, headers, listeners, routes, then other settings).
std::vector<std::string> describe_changes(const Config& before, const Config& after);

// The entries joined with "; ", or "no changes".
std::string join_changes(const std::vector<std::string>& changes);

}  // namespace config
