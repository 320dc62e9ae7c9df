#pragma once
// One HTTP/1.1 GET on its own connection, with a deadline: the active health probe
// (DESIGN.md "Health"). The answer's body is capped (health documents are small) and
// de-chunked. Memory is freed in the close callbacks, after `done` has run exactly once.
#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

namespace lb::net {

struct ProbeAnswer {
  int status = 0;               // 0: no HTTP answer
  std::string body;             // de-chunked, at most kMaxBody bytes
  std::string error;            // why there is no answer ("connect: connection refused", "timeout")
  bool local = false;           // corral could not make a socket (EMFILE/ENFILE): no verdict
  bool connect_failed = false;  // refused or unreachable: another address may answer
};

// Starts the probe; `done` runs on the loop's thread exactly once.
void http_probe(uv_loop_t* loop, const sockaddr_storage& addr, const std::string& host,
                const std::string& path, uint64_t timeout_ms,
                std::function<void(ProbeAnswer)> done);

}  // namespace lb::net
