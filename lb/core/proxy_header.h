#pragma once
// The PROXY protocol header (haproxy's proxy-protocol.txt, versions 1 and 2) that an L4
// balancer sends before the client's first byte, naming the real client. Pure: the
// caller owns the socket and feeds what has arrived so far.
#include <cstddef>
#include <cstdint>

namespace lb {

// v1 lines are at most 107 bytes with their CRLF; a v2 header is 16 bytes plus a length,
// which corral bounds to 1024 (addresses and the TLVs balancers send fit in far less).
inline constexpr size_t kProxyV1Max = 107;
inline constexpr size_t kProxyV2MaxPayload = 1024;
inline constexpr size_t kProxyHeaderMax = 16 + kProxyV2MaxPayload;

enum class ProxyStatus : uint8_t {
  need_more,  // every byte given belongs to a header that has not ended yet
  bad,        // not a PROXY header, or a malformed one: the connection is dropped
  ok,         // a header of `consumed` bytes; what follows is the client's
};

struct ProxyParse {
  ProxyStatus status = ProxyStatus::need_more;
  size_t consumed = 0;  // header bytes (ok only)
  // LOCAL (v2), UNKNOWN (v1), or a v2 family corral does not route (UDP, UNIX, UNSPEC):
  // the connection's own peer address stays the client's.
  bool local = false;
  uint8_t version = 0;  // 1 or 2 once recognised
  uint8_t src[16]{};    // the client's address bytes (4 or 16) when !local
  uint8_t src_len = 0;
  uint16_t src_port = 0;
  const char* error = nullptr;  // why bad, for the log line
};

// Parses the header at the start of data[0, len). need_more promises that the header has
// not ended within these bytes, so a caller may consume all of them from the socket and
// never take a byte of what follows; ok gives the exact header length. Addresses are
// checked strictly: v1 dotted quads without leading zeros, IPv6 as inet_pton reads it,
// ports 0..65535 in plain decimal, both addresses of the declared family.
ProxyParse parse_proxy_header(const uint8_t* data, size_t len);

}  // namespace lb
