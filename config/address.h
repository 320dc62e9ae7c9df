#pragma once
// host:port parsing for listen and backend addresses.
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace config {

// Parses "127.0.0.1:1442", "[::1]:8080" or "host.name:443". The host must be non-empty;
// an IPv6 literal must be bracketed (and is stored without the brackets, ready for
// inet_pton); a dotted-decimal host must be a valid IPv4 address; a name may hold
// letters, digits, '-', '_' and '.'. The port is decimal, 1..65535, or 0 when
// `listen` is set (an ephemeral port, chosen at bind time: tests and side-by-side runs). On failure
// returns nullopt and, when `error` is given, says what is wrong (without echoing the input).
std::optional<Address> parse_address(std::string_view text, std::string* error = nullptr,
                                     bool listen = false);

// True when two listen addresses cannot both be bound: same port and the same host, or
// either side a wildcard that covers the other; port 0 (ephemeral) never conflicts ("::" covers
// everything on Linux's dual-stack default, "0.0.0.0" covers IPv4).
bool listen_addresses_conflict(const Address& a, const Address& b);

}  // namespace config
