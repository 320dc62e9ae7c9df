#pragma once
// Socket addresses in one place: IP literals to sockaddr, ports in and out, and a peer's
// address as raw bytes (for client_ip keys) or text (for logs), IPv4 and IPv6 alike.
#include <sys/socket.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace lb::net {

// Parses an IP literal ("127.0.0.1", "::1" or "[::1]") and port; false if not a literal.
bool ip_sockaddr(const std::string& host, uint16_t port, sockaddr_storage& out);
void set_port(sockaddr_storage& addr, uint16_t port);
uint16_t port_of(const sockaddr_storage& addr);
socklen_t sockaddr_len(const sockaddr_storage& addr);

// The peer's IP address bytes (4 or 16) into out; returns the length, 0 if unknown.
size_t peer_ip(const uv_tcp_t* tcp, uint8_t out[16]);
// Text of 4 or 16 address bytes ("?" if len is neither).
void format_ip(const uint8_t* ip, size_t len, char* out, size_t out_size);
// "1.2.3.4:5" or "[::1]:5".
std::string format_endpoint(const sockaddr_storage& addr);

}  // namespace lb::net
