#include "lb/net/exchange.h"

#include <charconv>
#include <string>
#include <vector>

#include "health/live_points.h"
#include "lb/net/log.h"
#include "lb/net/quota_check.h"
#include "lb/net/socket_address.h"
#include "lb/net/worker.h"

namespace lb::net {
namespace {

uint64_t now_us() { return uv_hrtime() / 1000; }

// Parses an unsigned decimal header value (X-Most-Recent-Checkpoint).
bool parse_u64(std::string_view s, uint64_t& out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

Failure failure_of(UpstreamError e) {
  switch (e) {
    case UpstreamError::connect_failed:
      return Failure::connect_failed;
    case UpstreamError::connect_timeout:
      return Failure::connect_timeout;
    case UpstreamError::response_timeout:
      return Failure::response_timeout;
    case UpstreamError::closed_early:
      return Failure::closed_early;
    case UpstreamError::reset:
      return Failure::reset;
    case UpstreamError::tls:
      return Failure::tls_failed;
    case UpstreamError::bad_response:
    case UpstreamError::fd_exhausted:  // handled before any retry decision
      break;
  }
  return Failure::bad_response;
}

}  // namespace

void Exchange::begin(Worker& worker, ExchangeClient& client, const Runtime& rt,
                     const RuntimePool& pool, const SessionKey* user_key) {
  worker_ = &worker;
  client_ = &client;
  rt_ = &rt;
  pool_ = &pool;
  backend_ = nullptr;
  up_ = nullptr;
  addrs_.reset();
  stale_retries_ = failovers_ = retries_503_ = regression_resends_ = 0;
  move_reason_ = MoveReason::none;
  regressed_on_ = nullptr;
  user_slot_ = 0;
  failed_ = {};
  fresh_user_ = swallow_ = regressed_ = head_pending_ = connecting_ = decode_ = false;
  parked_ = cas_again_spent_ = false;
  store_mark_ = StoreMark::none;
  head_request_ = client.request().method() == "HEAD";
  pinned_ = user_key != nullptr;
  if (pinned_) {
    pin_key_ = pool_session_key(*user_key, pool.salt);
    hash_ = pin_key_.lo;
  } else {
    // No key at all: spread by a per-worker counter; nothing to pin.
    static thread_local uint64_t seq = 0;
    hash_ = name_hash(std::string_view(reinterpret_cast<const char*>(&++seq), sizeof seq));
  }
}

void Exchange::start(size_t backend) {
  backend_ = &pool_->backends[backend];
  backend_->stats->local().in_flight.fetch_add(1, std::memory_order_relaxed);
  up_ = worker_->upstreams().take(backend_->ref);
  if (up_) {
    up_->bind(this);
    send_head();
    return;
  }
  connect_first();
}

void Exchange::connect_first() {
  addrs_ = backend_->addrs->get();
  addr_first_ = backend_->addrs->preferred();
  addr_tried_ = 0;
  connect_next();
}

// A new connection to the backend's next untried address, in the book's order from the
// one that last connected.
void Exchange::connect_next() {
  connecting_ = true;
  if (addrs_->empty()) {
    // Placed on a snapshot where the name had resolved, started on one where it has not.
    upstream_failed(UpstreamError::connect_failed);
    return;
  }
  addr_index_ = static_cast<uint32_t>((addr_first_ + addr_tried_) % addrs_->size());
  ++addr_tried_;
  up_ = new UpstreamConn(*worker_, *backend_);
  up_->connect(reinterpret_cast<const sockaddr*>(&(*addrs_)[addr_index_]), this,
               pool_->timeouts.connect_ms);
}

void Exchange::upstream_connected() {
  // This address answers: the next connection (from any worker) starts here.
  backend_->addrs->set_preferred(addr_index_);
  send_head();
}

void Exchange::send_head() {
  connecting_ = false;
  sent_at_us_ = now_us();
  up_->expect_response(head_request_, pool_->timeouts.response_ms, client_->websocket_key(),
                       decode_);
  if (client_->request_done()) {
    // A whole request (or a resend): it goes out now and the answer is awaited.
    up_->send(client_->request_head());
    up_->start_response_timer();
  } else {
    // The head goes out with the first body bytes in one write, or alone on flush_head().
    head_pending_ = true;
  }
  client_->exchange_sending();
}

void Exchange::send_body(const std::string_view* parts, size_t n) {
  if (!up_ || connecting_) return;
  if (head_pending_) {
    head_pending_ = false;
    std::string_view all[5];
    size_t k = 0;
    all[k++] = client_->request_head();
    for (size_t i = 0; i < n && k < 5; ++i) all[k++] = parts[i];
    up_->send(all, k);
    return;
  }
  up_->send(parts, n);
}

void Exchange::flush_head() {
  if (!head_pending_ || !up_ || connecting_) return;
  head_pending_ = false;
  up_->send(client_->request_head());
}

void Exchange::request_sent() {
  if (up_ && !connecting_) up_->start_response_timer();
}

void Exchange::pause_response() {
  if (up_) up_->pause_reading();
}

void Exchange::resume_response() {
  if (up_) up_->resume_reading();
}

void Exchange::end_in_flight() {
  if (backend_) backend_->stats->local().in_flight.fetch_sub(1, std::memory_order_relaxed);
}

void Exchange::abort() {
  if (parked_) {
    if (StoreClient* store = worker_->store()) store->cancel(this);
    unpark();
  }
  if (up_) {
    up_->abort();
    up_ = nullptr;
    end_in_flight();
  }
  backend_ = nullptr;
}

void Exchange::cancel() {
  if (!up_) return;  // nothing under way upstream
  backend_->stats->local().client_aborts.fetch_add(1, std::memory_order_relaxed);
  abort();
}

void Exchange::upstream_drained() { client_->exchange_drained(); }

// ---- response -------------------------------------------------------------------------

RetryFacts Exchange::retry_facts() const {
  const http::MessageParser& p = client_->request();
  RetryFacts f;
  f.method = p.method();
  f.request_sent = client_->request_done();
  f.whole = f.request_sent && !p.chunked() && p.content_length() == 0;
  f.response_started = client_->response_started();
  f.fresh_user = fresh_user_;
  f.stale_retries = stale_retries_;
  f.failovers = failovers_;
  f.retries_503 = retries_503_;
  return f;
}

void Exchange::upstream_head(const http::MessageParser& r) {
  int status = r.status_code();
  if (status >= 200 || status == 101) {  // a final answer (a 101 is the handshake's)
    BackendStats& st = *backend_->stats;
    BackendShard& sh = st.local();
    sh.observe(now_us() - sent_at_us_);
    sh.count(status);
    // 402/429/418 from a rate-limited upstream trip its cool-down (quota_check.h).
    note_upstream_status(*pool_, status, worker_->loop(), worker_->store());
    // Remember the chain point this user has seen, so a move never goes backwards; an
    // answer older than it is a regression (a restarted or rolled-back instance).
    HeaderLookup cp = find_header(r.headers(), "x-most-recent-checkpoint");
    uint64_t slot = 0;
    if (cp.found && parse_u64(cp.value, slot)) {
      st.raise_tip(slot);
      if ((status == 200 || status == 304) && pool_->kind == config::PoolKind::kupo)
        if (HeaderLookup etag = find_header(r.headers(), "etag"); etag.found)
          st.live_points.record(health::pack_live_point(slot, etag.value));
      if (pinned_) worker_->state().sessions.record_slot(pin_key_, slot);
    }
    // Health hears of 503s, and of the first other answer after them; nothing else.
    if (status == 503) {
      st.streak_503.fetch_add(1, std::memory_order_relaxed);
      worker_->state().passive.post({backend_->ref, status});
    } else if (st.streak_503.load(std::memory_order_relaxed) != 0 &&
               st.streak_503.exchange(0, std::memory_order_relaxed) != 0) {
      worker_->state().passive.post({backend_->ref, status});
    }
    if (status == 503 &&
        decide_retry(Failure::status_503, retry_facts()) == RetryAction::failover) {
      // An overloaded backend and a user with no state there yet: try the next candidate
      // once instead (DESIGN.md "Health"); this 503 is read and dropped.
      swallow_ = true;
      return;
    }
    if (status != 101 && status != 503 && slot < user_slot_ && regression(slot, user_slot_)) return;
    if (regressed_on_) {
      // An older answer was discarded and this one, at or past the user's slot, replaces it.
      regressed_on_->local().regressions_prevented.fetch_add(1, std::memory_order_relaxed);
      regressed_on_ = nullptr;
    }
  }
  client_->exchange_head(r);
}

void Exchange::upstream_switched(std::unique_ptr<Stream> stream) {
  up_ = nullptr;  // it is gone; its stream is the tunnel's now (counted in upstream_head)
  end_in_flight();
  client_->exchange_switched(std::move(stream));  // last: it may free this exchange
}

void Exchange::upstream_body(const char* data, size_t len) {
  if (!swallow_) client_->exchange_body(data, len);
}

void Exchange::upstream_read_end() {
  if (regressed_) return resend_after_regression();
  if (!swallow_) client_->exchange_read_end();
}

void Exchange::upstream_done(bool reusable) {
  if (regressed_) return resend_after_regression();
  UpstreamConn* up = up_;
  up_ = nullptr;
  end_in_flight();
  // A connection whose request was not fully sent cannot carry another one.
  if (up) up->release(reusable && client_->request_done());
  if (swallow_) return retry_after_503();
  client_->exchange_done();
}

void Exchange::retry_after_503() {
  swallow_ = false;
  ++retries_503_;
  backend_->stats->local().retried_503.fetch_add(1, std::memory_order_relaxed);
  if (!move_request(backend_->ref, false)) {
    backend_ = nullptr;
    client_->exchange_failed(503, "backend overloaded", "Retry-After: 1\r\n");
  }
}

bool Exchange::move_request(BackendRef failed, bool count_move) {
  Reroute r;
  r.failed = failed;
  r.count_move = count_move;
  if (!count_move) {  // a 503 retry (retry_after_503)
    r.retry_503 = true;
    r.status = 503;
    r.reason = "backend overloaded";
    r.headers = "Retry-After: 1\r\n";
  }
  // A flight sends its followers their own way first; nobody left: stop here.
  if (!client_->exchange_rerouting(r)) return true;
  failed_.add(failed);
  Decision d = place_excluding(failed_, count_move);
  if (d.kind == Placement::none) return false;
  launch(d.index);
  return true;
}

void Exchange::launch(size_t index) {
  // A resend is one more request to the upstream: it needs the quota like the first.
  if (QuotaAdmission q = admit_quota(*pool_, worker_->loop(), worker_->store()); !q.ok()) {
    QuotaReply reply;
    quota_reply(q, reply);
    backend_ = nullptr;
    client_->exchange_failed(q.status, reply.reason, reply.headers);
    return;
  }
  start(index);
}

// corral could not make a socket: nothing about the backend is known, so no counter of
// the backend's, no health event and no failover (every backend would fail the same way).
// The client gets a 503 now; the operator a counter and a rate-limited line.
void Exchange::local_fd_exhausted() {
  up_ = nullptr;  // it closed itself
  connecting_ = false;
  worker_->state().fd_exhausted.fetch_add(1, std::memory_order_relaxed);
  log_backend_limited(pool_->name, backend_->name,
                      "out of file descriptors connecting to the backend (%s): answered 503; raise "
                      "the fd limit (ulimit -n / LimitNOFILE) or lower limits.max_connections",
                      backend_->address.c_str());
  end_in_flight();
  backend_ = nullptr;
  client_->exchange_failed(503, "corral is out of file descriptors", "Retry-After: 1\r\n");
}

void Exchange::upstream_failed(UpstreamError e) {
  if (swallow_) {
    // The answer being dropped (a 503, or an older checkpoint) broke off while it was
    // drained: its replacement goes ahead as decided, and nothing of it reached the client.
    up_ = nullptr;  // it closed itself
    connecting_ = false;
    if (regressed_) return resend_after_regression();
    end_in_flight();
    return retry_after_503();
  }
  if (e == UpstreamError::fd_exhausted) return local_fd_exhausted();
  RetryFacts facts = retry_facts();
  // up_ is still valid here: it is freed in its close callback.
  facts.reused_connection = up_ && up_->reused();
  bool connect = e == UpstreamError::connect_failed || e == UpstreamError::connect_timeout;
  if (connect && addrs_ && addr_tried_ < addrs_->size())
    facts.addresses_left = static_cast<uint32_t>(addrs_->size() - addr_tried_);
  // Whether the backend had the whole request: every byte read from the client and taken.
  bool delivered = facts.request_sent && !(up_ && up_->send_failed());
  std::string why = e == UpstreamError::bad_response && up_ ? up_->bad_reason()
                    : e == UpstreamError::tls && up_        ? up_->tls_error()
                                                            : std::string();
  up_ = nullptr;  // it closed itself
  connecting_ = false;
  BackendStats& st = *backend_->stats;
  RetryAction act = decide_retry(failure_of(e), facts);
  if (act == RetryAction::same) {
    // A parked keep-alive connection the backend had already closed: the request never
    // reached it, so send it again on a fresh connection.
    ++stale_retries_;
    connect_first();
    return;
  }
  if (act == RetryAction::next_address) {
    // One address of several did not answer: the backend is not failing while another
    // may, so no counter and no health event yet; those come if every address fails.
    log_backend_limited(pool_->name, backend_->name, "%s at %s (%s); trying its next address",
                        upstream_error_name(e), format_endpoint((*addrs_)[addr_index_]).c_str(),
                        backend_->address.c_str());
    connect_next();
    return;
  }
  bool timeout = e == UpstreamError::connect_timeout || e == UpstreamError::response_timeout;
  BackendShard& sh = st.local();
  (e == UpstreamError::connect_failed ? sh.connect_failures
   : e == UpstreamError::tls          ? sh.tls_failures
   : timeout                          ? sh.timeouts
                                      : sh.resets)
      .fetch_add(1, std::memory_order_relaxed);
  log_backend(LogLevel::warn, pool_->name, backend_->name, "%s%s%s (%s)", upstream_error_name(e),
              why.empty() ? "" : ": ", why.c_str(), backend_->address.c_str());
  // Health hears of failures that are the backend's: it could not be reached, or it had
  // the whole request and failed it. A backend that cuts off an upload it refuses is
  // not unhealthy, and a client must not be able to mark backends down that way.
  // A response timeout is the request's slowness as much as the backend's (a client picks
  // its query), so it only counts like a 503 (ejection within max_percent), never toward
  // down; the 503 streak mark makes the next answer reach health and end the streak.
  if (e == UpstreamError::response_timeout) {
    st.streak_503.fetch_add(1, std::memory_order_relaxed);
    worker_->state().passive.post({backend_->ref, 0, PassiveKind::response_timeout});
  } else if (connect || e == UpstreamError::tls || delivered) {
    worker_->state().passive.post({backend_->ref, 0, PassiveKind::failure});
  }
  end_in_flight();
  if (act == RetryAction::failover) {
    // Nothing reached the backend, or the request got no answer at all and can be resent:
    // the user moves now rather than see a 502 while health catches up.
    ++failovers_;
    if (move_request(backend_->ref, true)) return;
    backend_ = nullptr;
    client_->exchange_failed(502, "no reachable backend", {});
    return;
  }
  int status = timeout ? 504 : 502;
  if (!facts.response_started) sh.count(status);
  backend_ = nullptr;
  client_->exchange_failed(status, timeout ? "backend timed out" : "backend unreachable or failed",
                           {});
}

}  // namespace lb::net
