#include "lb/net/client_conn.h"

#include <cstddef>
#include <cstring>

#include "lb/http/head_writer.h"
#include "lb/net/log.h"
#include "lb/net/socket_address.h"
#include "lb/net/tcp_stream.h"
#include "lb/net/tls_stream.h"
#include "lb/net/worker.h"

namespace lb::net {

ClientConn* ClientConn::open(Worker& worker, std::unique_ptr<Stream> stream, size_t listener,
                             const uint8_t* ip, size_t ip_len) {
  auto* c = new ClientConn(worker, std::move(stream), listener);
  if (ip_len == 4 || ip_len == 16) {
    std::memcpy(c->ip_, ip, ip_len);
    c->ip_len_ = static_cast<uint8_t>(ip_len);
  }
  c->start();
  return c;
}

ClientConn::ClientConn(Worker& worker, std::unique_ptr<Stream> stream, size_t listener)
    : worker_(worker),
      rt_(worker.runtime()),
      listener_stats_(rt_->listeners[listener].stats),
      stream_(std::move(stream)),
      listener_(static_cast<uint32_t>(listener)) {
  stream_->set_handler(this);
  deadline_.fire = &ClientConn::on_deadline;
  deadline_.owner = this;
  worker.track(this);
  // Counted open here and closed in on_closed, whatever happens in between.
  worker.state().connections.fetch_add(1);
  listener_stats_->local().open.fetch_add(1, std::memory_order_relaxed);
}

void ClientConn::start() {
  listener_stats_->local().accepted.fetch_add(1, std::memory_order_relaxed);
  uint64_t max = rt_->config.limits.max_connections;
  if (worker_.state().connections.load() > static_cast<int64_t>(max)) {
    listener_stats_->local().rejected.fetch_add(1, std::memory_order_relaxed);
    log_limited("connection from %s refused: max_connections (%llu) reached", ip_text(),
                static_cast<unsigned long long>(max));
    reply_local(503, "too many connections", true, "Retry-After: 1\r\n");
    return;
  }
  update_reading();
  arm_timer();
}

ClientConn::~ClientConn() { worker_.untrack(this); }

const char* ClientConn::ip_text() {
  static thread_local char text[48];
  format_ip(ip_, ip_len_, text, sizeof text);
  return text;
}

RequestState& ClientConn::req() {
  if (!rs_) {
    rs_ = worker_.request_states().take();
    // A pooled state still names the last exchange's backend, which a reload may have
    // freed since: a request that never reaches an exchange must not see it.
    rs_->exchange = Exchange();
    rs_->access = {};
    rs_->expose_backend = {};
    rs_->parser.reset(rt_->config.limits.max_header_bytes);
    rs_->parser.set_body_sink(&ClientConn::on_chunk_data, this);
  }
  return *rs_;
}

void ClientConn::give_request_state() {
  // A placement still waiting for the store: its answer must not find a pooled state.
  if (rs_ && rs_->exchange.parked()) rs_->exchange.abort();
  if (rs_ && rs_->access.active) write_access();
  recycle_request_state(worker_, rs_);
  rs_ = nullptr;
}

void recycle_request_state(Worker& worker, RequestState* rs) {
  if (!rs) return;
  rs->host_fields.reset();  // only an absolute-form request had one
  // issue 16: a hit's entry and an unfinished fill are let go (an active fill would take
  // the next request's bytes and store them under this one's key).
  rs->hit.reset();
  rs->hit_off = 0;
  rs->fill.reset();
  rs->lookup = {};
  rs->access = {};
  worker.request_states().give(rs);
}

void ClientConn::close() {
  if (closing_) return;
  closing_ = true;
  leave_flight();  // [flights] before the state goes (a leader's may be adopted)
  leave_fill_flight();
  hand_over_fill();  // a fill flight's leader: its exchange goes on for the followers
  if (rs_) rs_->exchange.abort();
  worker_.deadlines().clear(deadline_);
  give_request_state();
  stream_->close();
}

void ClientConn::on_closed(Stream&) {
  worker_.state().connections.fetch_sub(1);
  listener_stats_->local().open.fetch_sub(1, std::memory_order_relaxed);
  delete this;
}

void ClientConn::stop_gracefully() {
  stop_ = true;
  if (phase_ == Phase::head && !head_partial_ && stream_->idle()) close();
}

// ---- reading --------------------------------------------------------------------------

void ClientConn::update_reading() {
  if (closing_) return;
  bool want = !client_eof_;
  if (phase_ == Phase::body)
    want = want && exchanging() && rs_->exchange.pending() < worker_.max_pending();
  // Reading goes on while connecting or waiting, so a client that hangs up is noticed
  // (its FIN cancels the exchange). Pipelined bytes are kept unparsed in the one buffer
  // (a buffer is taken only when bytes come); once it is full they wait in the kernel,
  // and so does a FIN behind them.
  if (phase_ != Phase::lingering)
    want = want && !stream_->input_full() && stream_->pending() < worker_.max_pending();
  if (want == stream_->reading()) return;
  if (want)
    stream_->read_start();
  else
    stream_->read_stop();
}

void ClientConn::on_readable(Stream&) {
  if (closing_) return;
  if (stream_->starved()) {
    arm_starved_retry();
    return;
  }
  if (phase_ == Phase::lingering) {
    stream_->consume(stream_->input().size());
    return;
  }
  if (phase_ == Phase::body || phase_ == Phase::discard) arm_timer();
  process();
}

void ClientConn::on_eof(Stream&) {
  if (closing_) return;
  if (phase_ == Phase::lingering) {
    close();
    return;
  }
  // Half-close: the client sent all it will. Finish the current response, then close.
  client_eof_ = true;
  close_after_ = true;
  if (phase_ == Phase::placing) {
    // Gone while its user's placement waited for the store: nobody is left to answer.
    close();  // cancels the store's answer (Exchange::abort)
    return;
  }
  if (exchanging() && !resp_started_) {
    // Gone before its answer started (nginx's default): the upstream exchange is
    // abandoned now rather than held until the backend answers or times out. A body cut
    // short gets its 400 (the client may still read); otherwise nobody is left to answer.
    bool truncated = phase_ == Phase::body;
    abandon_exchange();
    if (truncated)
      reply_local(400, "request body truncated", true);
    else
      close();
    return;
  }
  if (phase_ == Phase::head || phase_ == Phase::discard || phase_ == Phase::body) {
    if (phase_ == Phase::head && stream_->has_input()) {
      process();  // a whole request before the FIN is still served
      if (closing_ || phase_ != Phase::head) return;
    }
    if (stream_->idle()) close();  // else on_drained closes after the answer
  }
}

void ClientConn::on_stream_error(Stream&, int error) {
  if (error == TlsStream::kTlsError)
    if (auto* tls = dynamic_cast<TlsStream*>(stream_.get())) {
      listener_stats_->local().tls_failures.fetch_add(1, std::memory_order_relaxed);
      log_limited("TLS from %s: %s", ip_text(), tls->tls_error().c_str());
    }
  // The client went away before its answer was all delivered (write errors come from the
  // loop, so the exchange may have ended already while the answer was still going out).
  const RuntimeBackend* b = rs_ ? rs_->exchange.backend() : nullptr;
  if (exchanging())
    cancel_answer();  // [flights] leaves a flight, else cancels the exchange
  else if (b && resp_started_)
    b->stats->local().client_aborts.fetch_add(1, std::memory_order_relaxed);
  close();
}

// The client left before its answer started: cancel the exchange (which counts it as the
// backend's client abort and closes the upstream connection rather than pooling it).
void ClientConn::abandon_exchange() {
  const RuntimeBackend* b = rs_->exchange.backend();
  logf(LogLevel::debug, "client %s closed before its answer; request to %s abandoned", ip_text(),
       b ? b->name.c_str() : "?");
  cancel_answer();  // [flights]
}

// ---- parsing --------------------------------------------------------------------------

void ClientConn::process() {
  while (!closing_) {
    if (phase_ == Phase::head) {
      std::string_view in = stream_->input();
      if (in.empty()) break;
      http::MessageParser& parser = req().parser;
      if (!head_partial_) {
        // A new head starts at the buffer's start, so it can use the whole buffer; its
        // header views point into the buffer until it is complete.
        stream_->compact_input();
        stream_->hold_input(true);
        in = stream_->input();
        head_bytes_ = 0;
      }
      bool was_partial = head_partial_;
      http::ParseResult r = parser.feed(in.data(), in.size());
      stream_->consume(r.consumed);
      head_bytes_ += r.consumed;
      if (r.status == http::ParseStatus::need_more && stream_->input_full()) {
        // The head fills a whole buffer (buffer_bytes can equal max_header_bytes) and is
        // not complete: it is over the limit.
        stream_->hold_input(false);
        log_limited("client %s: bad request (431): header fields too large", ip_text());
        reply_local(431, "header fields too large", true);
        return;
      }
      if (r.status == http::ParseStatus::need_more) {
        head_partial_ = true;
        if (!was_partial) arm_timer();  // header_timeout runs from the first byte
        break;
      }
      if (r.status == http::ParseStatus::error || r.status == http::ParseStatus::upgrade) {
        stream_->hold_input(false);
        int code = r.status == http::ParseStatus::error ? parser.error_status() : 400;
        const char* why = r.status == http::ParseStatus::error ? parser.error_reason()
                                                               : "unexpected protocol upgrade";
        log_limited("client %s: bad request (%d): %s", ip_text(), code, why);
        reply_local(code, why, true);
        return;
      }
      head_partial_ = false;
      // body_timeout runs from the end of the head, whatever the pace of the body.
      body_due_ms_ = worker_.deadlines().now() + rt_->config.limits.body_timeout_ms;
      on_request_head();  // copies what it needs out of the head's views
      // Placing: the views stay in use until the store answers (exchange_placed).
      if (!closing_ && phase_ != Phase::placing) stream_->hold_input(false);
      continue;
    }
    if (phase_ == Phase::body || phase_ == Phase::discard) {
      if (!process_body()) break;
      continue;
    }
    break;  // placing, connecting, waiting, lingering: events drive us
  }
  if (closing_) return;
  // A head still waiting for body bytes (or for a bodyless request's end) goes out now.
  if (rs_ && phase_ != Phase::connecting && phase_ != Phase::placing) rs_->exchange.flush_head();
  update_reading();
}

// One step of reading a request body (forwarding it, or discarding it after a local
// answer). True to go on parsing (the next request's head); false to stop here.
bool ClientConn::process_body() {
  const Phase before = phase_;
  http::MessageParser& parser = rs_->parser;
  std::string_view in = stream_->input();
  // Feed even with no bytes: a bodyless message completes on an empty feed.
  http::ParseResult r = parser.feed(in.data(), in.size());
  // A write to the backend inside the feed (re-framed chunks) may have failed the
  // exchange and answered the client already.
  if (closing_ || phase_ != before) return false;
  if (r.status == http::ParseStatus::error) {
    // 400, or 413 for a chunk or chunk extensions over max_body_bytes.
    log_limited("client %s: bad request body (%d): %s", ip_text(), parser.error_status(),
                parser.error_reason());
    if (phase_ == Phase::body && exchanging())
      fail_exchange(parser.error_status(), parser.error_reason());
    else
      reply_local(parser.error_status(), parser.error_reason(), true);
    return false;
  }
  if (phase_ == Phase::body && body_over_limit_) {
    fail_exchange(413, "request body larger than max_body_bytes");
    return false;
  }
  if (phase_ == Phase::body) {
    // Content-Length bodies go raw; chunked ones went through on_chunk_data.
    if (!reframe_) forward_body(in.substr(0, r.consumed));
    if (closing_ || phase_ != before) return false;
  } else {
    body_bytes_ += r.consumed;
    if (body_bytes_ > rt_->config.limits.max_body_bytes) {
      close();
      return false;
    }
  }
  stream_->consume(r.consumed);
  rs_->access.bytes_in += r.consumed;
  if (r.status != http::ParseStatus::done) {
    if (client_eof_ && !stream_->has_input()) {
      if (phase_ == Phase::body && exchanging())
        fail_exchange(400, "request body truncated");
      else
        end_response_and_close();  // a local answer may still be on its way out
      return false;
    }
    return false;
  }
  if (phase_ == Phase::discard) {
    next_request();
    return !closing_;
  }
  if (reframe_) {
    forward_body("0\r\n\r\n");  // the last chunk, no trailers
    if (closing_ || phase_ != before) return false;
  }
  req_done_ = true;
  phase_ = Phase::waiting;
  rs_->exchange.request_sent();
  arm_timer();
  if (resp_started_ && !exchanging()) {
    // The response finished before the request did (an early answer).
    finish_exchange();
    return !closing_;
  }
  return false;
}

// ---- answers and the end of a request -------------------------------------------------

void ClientConn::reply_local(int status, const char* reason, bool close_after,
                             std::string_view extra_headers) {
  close_after = close_after || !keep_alive_ || stop_ || client_eof_;
  listener_stats_->local().count(status);
  std::string& out = req().resp_head;
  http::write_error_response(out, status, reason, close_after, extra_headers);
  rs_->access.status = status;
  note_sent(out.size());
  stream_->write(out);
  note_output();
  resp_started_ = true;
  if (close_after) {
    close_after_ = true;
    end_response_and_close();
    return;
  }
  if (req_done_) {  // the request was read to its end already
    next_request();
    return;
  }
  // Keep the connection: read past this request's body, then serve the next one.
  rs_->parser.resume_after_head();
  phase_ = Phase::discard;
  body_bytes_ = 0;
  arm_timer();
}

void ClientConn::next_request() {
  phase_ = Phase::head;
  head_partial_ = false;
  body_due_ms_ = 0;
  // A fresh parser state per request; between requests the connection keeps nothing.
  give_request_state();
  if (stop_ && !stream_->has_input() && stream_->idle()) {
    close();
    return;
  }
  if (client_eof_ && !stream_->has_input()) {
    end_response_and_close();
    return;
  }
  arm_timer();
}

void ClientConn::end_response_and_close() {
  close_after_ = true;
  if (closing_) return;
  if (stream_->idle()) {
    linger();
    return;
  }
  phase_ = Phase::waiting;  // on_drained finishes the job
  update_reading();
}

void ClientConn::linger() {
  // Shut our side, then read and drop what the client still sends for a moment: closing
  // with unread input would reset the connection and could destroy the response we just
  // wrote before the client reads it (nginx's lingering_close).
  if (client_eof_) {
    close();
    return;
  }
  if (phase_ == Phase::lingering) return;
  phase_ = Phase::lingering;
  stream_->set_exempt(true);  // bytes read here are dropped at once: never wait for memory
  give_request_state();
  stream_->consume(stream_->input().size());
  stream_->shutdown();
  arm_timer();
  update_reading();
}

void ClientConn::on_drained(Stream&) {
  if (closing_) return;
  if (writing_hit()) {  // issue 16: the next slices of a hit's body
    continue_hit_body();
    if (closing_ || writing_hit()) return;
  }
  if (close_after_ && !exchanging() && phase_ != Phase::lingering &&
      (resp_started_ || phase_ == Phase::waiting)) {
    linger();
    return;
  }
  if (flight_)
    flight_->drained(*this);  // [flights] takes what the window holds for it
  else if (exchanging())
    rs_->exchange.resume_response();
  if (closing_) return;
  if (stop_ && phase_ == Phase::head && !head_partial_ && !stream_->has_input()) {
    close();
    return;
  }
  arm_timer();
  update_reading();
  if (phase_ == Phase::head && stream_->has_input()) process();
}

}  // namespace lb::net
