#pragma once
// Which requests may be sent again, and where (one list for every case): a request is
// re-sent only while its client has seen nothing of the answer, only when all of its bytes
// are still ours, and only when sending it twice is harmless (RFC 9110 §9.2.2 idempotent
// methods) or it provably never reached the backend (a connect failure).
#include <cstdint>
#include <string_view>

namespace lb {

// RFC 9110 §9.2.2.
bool idempotent_method(std::string_view method);
// RFC 9110 §9.2.1: read-only methods.
bool safe_method(std::string_view method);

enum class Failure : uint8_t {
  connect_failed,    // refused or unreachable: the request never left
  connect_timeout,   // likewise
  closed_early,      // closed before any response byte (a stale keep-alive, or a crash)
  reset,             // closed or reset mid-response
  response_timeout,  // no (complete) answer in time
  bad_response,      // not HTTP
  status_503,        // answered 503 (overloaded)
  tls_failed,        // TLS handshake or certificate check failed: the request never left
};

struct RetryFacts {
  std::string_view method;
  bool whole = false;              // the request is complete and bodyless: resendable as is
  bool request_sent = false;       // every byte of the request went out
  bool response_started = false;   // the client has seen part of an answer
  bool reused_connection = false;  // the exchange ran on a pooled keep-alive connection
  bool fresh_user = false;         // placed by this request (new or moved): no state yet
  uint8_t stale_retries = 0;       // resends on the same backend so far
  uint8_t failovers = 0;           // moves to another backend so far
  uint8_t retries_503 = 0;         // 503s replaced by another backend so far
  uint32_t addresses_left = 0;     // the backend's addresses not yet tried by this request
};

enum class RetryAction : uint8_t {
  none,          // answer the client with what happened (502/504, or the 503 itself)
  same,          // send again to the same backend on a fresh connection
  next_address,  // connect to the same backend's next address (its name has several)
  failover,      // send to the next candidate (re-pinning the user there)
};

inline constexpr uint8_t kMaxFailovers = 2;

RetryAction decide_retry(Failure failure, const RetryFacts& facts);

}  // namespace lb
