#pragma once
// Startup and reload warnings about what an operator exposed by accident (issue 11, "Admin
// guard"): a config, token, secret or TLS key file that the group or other users may read
// (a Blockfrost key in a 0644 file is one `cat` away from any local account), and an
// admin listener on a non-loopback address without a bearer token. Warnings only: corral
// still starts, as a file's mode may be deliberate (a group the service shares).
#include <string>
#include <string_view>

#include "config/config.h"

namespace lb::net {

// The reason `path` counts as exposed ("mode 0644: readable by group and others"), or ""
// when only its owner can read or write it, or it cannot be stat'ed (the loader reports
// unreadable files itself). Symbolic links are followed: the mode that matters is the
// target's.
std::string exposure(const std::string& path);

// Logs a warning naming `what` ("TLS key file", ...) and `path` when exposure() finds one;
// true if it warned. For anyone who adds a file holding a secret (e.g. listener tls.key).
bool warn_if_exposed(const std::string& path, std::string_view what);

// True for an admin bind address that only this host can reach: 127.0.0.0/8, ::1,
// localhost.
bool is_loopback_host(std::string_view host);

// Every warning above for one config: its own file (unless embedded), admin.token_file,
// each set_headers {file:} secret, and an admin listener beyond loopback without a token.
// Returns how many warnings were logged. Called at start and after each good reload.
int warn_exposed(const config::Config& cfg);

}  // namespace lb::net
