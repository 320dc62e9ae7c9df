#include "lb/net/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

namespace lb::net {

bool ip_sockaddr(const std::string& host, uint16_t port, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
  } else {
    return false;
  }
  set_port(out, port);
  return true;
}

void set_port(sockaddr_storage& addr, uint16_t port) {
  if (addr.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in*>(&addr)->sin_port = htons(port);
  else if (addr.ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port = htons(port);
}

uint16_t port_of(const sockaddr_storage& addr) {
  if (addr.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

socklen_t sockaddr_len(const sockaddr_storage& addr) {
  return addr.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

size_t peer_ip(const uv_tcp_t* tcp, uint8_t out[16]) {
  sockaddr_storage peer{};
  int len = sizeof peer;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return 0;
  if (peer.ss_family == AF_INET) {
    std::memcpy(out, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, 4);
    return 4;
  }
  if (peer.ss_family == AF_INET6) {
    std::memcpy(out, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, 16);
    return 16;
  }
  return 0;
}

void format_ip(const uint8_t* ip, size_t len, char* out, size_t out_size) {
  if ((len != 4 && len != 16) || !inet_ntop(len == 4 ? AF_INET : AF_INET6, ip, out, out_size))
    std::snprintf(out, out_size, "?");
}

std::string format_endpoint(const sockaddr_storage& addr) {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&addr)->sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(port_of(addr));
  }
  if (addr.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_addr, ip, sizeof ip);
    return "[" + std::string(ip) + "]:" + std::to_string(port_of(addr));
  }
  return "unknown";
}

}  // namespace lb::net
