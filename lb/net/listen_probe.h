#pragma once
// Port ownership (issue 14): corral's workers share a listen address through SO_REUSEPORT,
// which would just as silently share it with another process that set the option too (a
// second corral answered part of the first one's traffic). Before its own sockets are
// bound, a listen address is probe-bound with a plain socket, without SO_REUSEPORT: on
// Linux that bind fails with EADDRINUSE while anybody listens there.
#include <cstdint>
#include <string>

namespace lb::net {

// What a listen address somebody else listens on is said to be, probe or bind alike.
inline constexpr char kAddressInUse[] = "address already in use by another process";

// "127.0.0.1:8080" or "[::1]:8080".
std::string endpoint_text(const std::string& host, uint16_t port);

// Empty when host:port can be bound now; otherwise why not ("address already in use by
// another process", or the bind error). Port 0 always passes: the kernel hands out a port
// nobody holds. The probe socket is closed before returning.
std::string probe_listen_address(const std::string& host, uint16_t port);

}  // namespace lb::net
