#pragma once
// One HTTP/1.1 GET on its own connection, with a deadline: the active health probe
// (DESIGN.md "Health"), over plain TCP or, for a TLS backend, TLS (the same TlsStream as
// live traffic, so a certificate that does not verify fails the probe too). The answer's
// body is capped (health documents are small) and de-chunked. Memory is freed in the
// close callbacks, after `done` has run exactly once.
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "lb/net/tls_context.h"

namespace lb::net {

struct ProbeAnswer {
  int status = 0;               // 0: no HTTP answer
  std::string body;             // de-chunked, at most kMaxBody bytes
  std::string error;            // why there is no answer ("connect: connection refused", "timeout")
  bool local = false;           // corral could not make a socket (EMFILE/ENFILE): no verdict
  bool connect_failed = false;  // refused or unreachable: another address may answer
};

// TLS for a probe: the backend's client context and the name its certificate must carry.
struct ProbeTls {
  TlsContext ctx;
  std::string server_name;
};

// Starts the probe (over TLS when `tls` is given); extra_headers: "Name: value\r\n" lines
// added to the request (a pool's injected headers). `done` runs on the loop's thread
// exactly once.
void http_probe(uv_loop_t* loop, const sockaddr_storage& addr, const std::string& host,
                const std::string& path, uint64_t timeout_ms, const ProbeTls* tls,
                std::string_view extra_headers, std::function<void(ProbeAnswer)> done);

}  // namespace lb::net
