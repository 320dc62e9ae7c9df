#include <doctest.h>

#include <string_view>

#include "lb/core/retry_policy.h"

using namespace lb;

namespace {

// A whole bodyless GET, sent on a fresh connection, nothing of the answer seen yet.
RetryFacts get() {
  RetryFacts x;
  x.method = "GET";
  x.whole = true;
  x.request_sent = true;
  return x;
}

RetryFacts with_method(std::string_view m) {
  RetryFacts x = get();
  x.method = m;
  return x;
}

constexpr Failure kAll[] = {Failure::connect_failed,   Failure::connect_timeout,
                            Failure::closed_early,     Failure::reset,
                            Failure::response_timeout, Failure::bad_response,
                            Failure::status_503,       Failure::tls_failed};

}  // namespace

TEST_CASE("retry: idempotent methods are RFC 9110 §9.2.2's, case-sensitive") {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
    CHECK_MESSAGE(idempotent_method(m), m);
  for (std::string_view m : {"POST", "PATCH", "CONNECT", "get", "", "GETS"})
    CHECK_MESSAGE(!idempotent_method(m), m);
}

TEST_CASE("retry: once the client has seen part of an answer, nothing is retried") {
  for (Failure f : kAll) {
    RetryFacts x = get();
    x.response_started = true;
    x.fresh_user = true;
    x.reused_connection = true;
    CHECK(decide_retry(f, x) == RetryAction::none);
  }
}

TEST_CASE("retry: a connect failure fails over for any method, up to the cap") {
  for (Failure f : {Failure::connect_failed, Failure::connect_timeout}) {
    for (std::string_view m : {"GET", "POST", "PATCH"}) {
      RetryFacts x = with_method(m);
      CHECK(decide_retry(f, x) == RetryAction::failover);
      // A streamed body that never left is still ours.
      x.whole = false;
      x.request_sent = false;
      CHECK(decide_retry(f, x) == RetryAction::failover);
      // Part of a body was consumed and sent elsewhere: not ours to send again.
      x.request_sent = true;
      CHECK(decide_retry(f, x) == RetryAction::none);
    }
    RetryFacts x = get();
    x.failovers = kMaxFailovers - 1;
    CHECK(decide_retry(f, x) == RetryAction::failover);
    x.failovers = kMaxFailovers;
    CHECK(decide_retry(f, x) == RetryAction::none);
  }
}

TEST_CASE("retry: a connect failure tries the backend's other addresses before failing over") {
  for (Failure f : {Failure::connect_failed, Failure::connect_timeout}) {
    RetryFacts x = with_method("POST");
    x.addresses_left = 1;
    CHECK(decide_retry(f, x) == RetryAction::next_address);
    // Even past the failover cap: another address of the same backend is no failover.
    x.failovers = kMaxFailovers;
    CHECK(decide_retry(f, x) == RetryAction::next_address);
    // Bytes of the body already gone: nothing may be sent again, anywhere.
    x.whole = false;
    CHECK(decide_retry(f, x) == RetryAction::none);
    x.addresses_left = 0;
    x.whole = true;
    x.failovers = 0;
    CHECK(decide_retry(f, x) == RetryAction::failover);
  }
  // Other failures had a connection: the address worked, so no other address is tried.
  for (Failure f : {Failure::closed_early, Failure::reset, Failure::response_timeout,
                    Failure::bad_response, Failure::status_503}) {
    RetryFacts x = get();
    x.addresses_left = 3;
    x.fresh_user = true;
    CHECK(decide_retry(f, x) != RetryAction::next_address);
  }
}

TEST_CASE("retry: a TLS failure fails over like a connect failure, never to another address") {
  RetryFacts x = with_method("POST");
  x.addresses_left = 2;  // the same certificate would be shown at every address
  CHECK(decide_retry(Failure::tls_failed, x) == RetryAction::failover);
  x.failovers = kMaxFailovers;
  CHECK(decide_retry(Failure::tls_failed, x) == RetryAction::none);
  x.failovers = 0;
  x.whole = false;  // part of a body already consumed: not ours to resend
  CHECK(decide_retry(Failure::tls_failed, x) == RetryAction::none);
  x.request_sent = false;  // a body still to stream: nothing left yet
  CHECK(decide_retry(Failure::tls_failed, x) == RetryAction::failover);
}

TEST_CASE("retry: a stale keep-alive connection is retried once on the same backend") {
  RetryFacts x = get();
  x.reused_connection = true;
  CHECK(decide_retry(Failure::closed_early, x) == RetryAction::same);
  x.method = "DELETE";
  CHECK(decide_retry(Failure::closed_early, x) == RetryAction::same);
  // The second close on a fresh connection is the backend's: the next candidate.
  x.stale_retries = 1;
  CHECK(decide_retry(Failure::closed_early, x) == RetryAction::failover);
  x.failovers = kMaxFailovers;
  CHECK(decide_retry(Failure::closed_early, x) == RetryAction::none);
}

TEST_CASE("retry: closed early without an answer fails over idempotent whole requests") {
  RetryFacts x = get();
  CHECK(decide_retry(Failure::closed_early, x) == RetryAction::failover);
  x.failovers = kMaxFailovers;
  CHECK(decide_retry(Failure::closed_early, x) == RetryAction::none);
}

TEST_CASE("retry: closed early is not retried for POST or an incomplete request") {
  for (bool reused : {false, true}) {
    RetryFacts x = with_method("POST");
    x.reused_connection = reused;
    CHECK(decide_retry(Failure::closed_early, x) == RetryAction::none);
    x = with_method("PATCH");
    x.reused_connection = reused;
    CHECK(decide_retry(Failure::closed_early, x) == RetryAction::none);
    x = with_method("PUT");  // idempotent, but its body is no longer whole
    x.whole = false;
    x.reused_connection = reused;
    CHECK(decide_retry(Failure::closed_early, x) == RetryAction::none);
  }
}

TEST_CASE("retry: a fresh user's first 503 on a safe request goes to the next candidate") {
  for (std::string_view m : {"GET", "HEAD", "OPTIONS"}) {
    RetryFacts x = with_method(m);
    x.fresh_user = true;  // new, or just moved
    CHECK(decide_retry(Failure::status_503, x) == RetryAction::failover);
    x.retries_503 = 1;  // once only
    CHECK(decide_retry(Failure::status_503, x) == RetryAction::none);
  }
}

TEST_CASE("retry: a 503 is not retried for a pinned user, an unsafe or incomplete request") {
  RetryFacts x = get();
  x.fresh_user = false;  // a pinned user stays on its backend and sees the 503
  CHECK(decide_retry(Failure::status_503, x) == RetryAction::none);
  for (std::string_view m : {"PUT", "DELETE", "POST", "TRACE"}) {
    x = with_method(m);
    x.fresh_user = true;
    CHECK_MESSAGE(decide_retry(Failure::status_503, x) == RetryAction::none, m);
  }
  x = get();
  x.fresh_user = true;
  x.whole = false;
  CHECK(decide_retry(Failure::status_503, x) == RetryAction::none);
}

TEST_CASE("retry: resets, response timeouts and bad responses are never retried") {
  for (Failure f : {Failure::reset, Failure::response_timeout, Failure::bad_response})
    for (bool reused : {false, true}) {
      RetryFacts x = get();
      x.reused_connection = reused;
      x.fresh_user = true;
      CHECK(decide_retry(f, x) == RetryAction::none);
    }
}
