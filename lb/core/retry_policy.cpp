#include "lb/core/retry_policy.h"

namespace lb {

// RFC 9110 §9.2.1 safe methods: read-only, so a 503 can be replaced by another backend's
// answer without the first having done anything.
bool safe_method(std::string_view m) { return m == "GET" || m == "HEAD" || m == "OPTIONS"; }

// RFC 9110 §9.2.2: the safe methods plus PUT and DELETE. Method names are case-sensitive
// (§9.1), so "get" is not GET.
bool idempotent_method(std::string_view m) {
  return safe_method(m) || m == "TRACE" || m == "PUT" || m == "DELETE";
}

// The rules, first match wins. Each re-send needs every byte of the request still in hand
// (`whole`) unless none of it ever left.
RetryAction decide_retry(Failure failure, const RetryFacts& x) {
  // Part of an answer reached the client: a second answer cannot be spliced in.
  if (x.response_started) return RetryAction::none;
  const bool idempotent = idempotent_method(x.method);
  const bool can_fail_over = x.failovers < kMaxFailovers;
  switch (failure) {
    case Failure::connect_failed:
    case Failure::connect_timeout:
      // The request never reached the backend, so any method may go elsewhere, provided
      // its bytes are still ours to send: first to the backend's other addresses (a
      // hosted service that moved, or a name with IPv4 and IPv6 records of which one
      // family does not answer), then to another backend.
      if (!x.whole && x.request_sent) return RetryAction::none;
      if (x.addresses_left > 0) return RetryAction::next_address;
      return can_fail_over ? RetryAction::failover : RetryAction::none;
    case Failure::tls_failed:
      // Nothing was sent, so it may go elsewhere; another address of the same backend
      // would show the same certificate.
      return (x.whole || !x.request_sent) && can_fail_over ? RetryAction::failover
                                                           : RetryAction::none;
    case Failure::closed_early:
      if (!idempotent || !x.whole) return RetryAction::none;  // e.g. a POST may have run
      // A pooled keep-alive connection the backend had closed meanwhile: the request most
      // likely never arrived; once on a fresh connection to the same backend.
      if (x.reused_connection && x.stale_retries == 0) return RetryAction::same;
      // No answer at all (a crash, or a second close): harmless to send elsewhere.
      return can_fail_over ? RetryAction::failover : RetryAction::none;
    case Failure::status_503:
      // DESIGN.md "Health": a user with no state yet (new, or just moved) may have its
      // first 503 on a safe request answered by the next candidate instead; a pinned user
      // stays and sees the 503 (its client backs off).
      return x.fresh_user && x.retries_503 == 0 && x.whole && safe_method(x.method)
                 ? RetryAction::failover
                 : RetryAction::none;
    case Failure::reset:
    case Failure::response_timeout:
    case Failure::bad_response:
      // The backend had the request and may have acted on it: answer 502/504.
      return RetryAction::none;
  }
  return RetryAction::none;
}

}  // namespace lb
