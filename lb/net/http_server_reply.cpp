// One server connection's write side: response heads and bodies (whole or chunked), error
// answers, the orderly close after the last byte, and the Responder handed to handlers.
#include <cstdio>
#include <string>
#include <utility>

#include "lb/http/reason_phrase.h"
#include "lb/net/http_server_conn.h"

namespace lb::net {

namespace {

// A JSON string literal body for error responses; reasons come from llhttp or from us, but
// escape anyway so that the body is always valid JSON.
std::string json_error(std::string_view reason) {
  std::string out = "{\"error\":\"";
  for (char c : reason) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  out += "\"}";
  return out;
}

}  // namespace

// ---- writing ----

void ServerConnection::write(std::string data) {
  if (closing_ || data.empty()) return;
  auto* w = new WriteReq{{}, std::move(data)};
  w->req.data = this;
  write_bytes_pending_ += w->data.size();
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
               &ServerConnection::on_write) != 0) {
    write_bytes_pending_ -= w->data.size();
    delete w;
    close_now(false);
    return;
  }
  ++writes_pending_;
}

void ServerConnection::on_write(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* self = static_cast<ServerConnection*>(req->data);
  self->write_bytes_pending_ -= w->data.size();
  delete w;
  --self->writes_pending_;
  if (status < 0) {
    self->close_now(false);
    return;
  }
  if (self->close_after_write_ && self->writes_pending_ == 0) self->start_shutdown();
}

void ServerConnection::finish_and_close() {
  close_after_write_ = true;
  pending_ = false;
  if (writes_pending_ == 0) start_shutdown();
}

void ServerConnection::start_shutdown() {
  if (shutting_ || closing_) return;
  shutting_ = true;
  auto* req = new uv_shutdown_t{};
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), &ServerConnection::on_shutdown) !=
      0) {
    delete req;
    close_now(false);
  }
}

void ServerConnection::on_shutdown(uv_shutdown_t* req, int) {
  auto* self = static_cast<ServerConnection*>(req->data);
  delete req;
  self->close_now(false);
}

std::string ServerConnection::head_lines(int status, std::string_view content_type,
                                         const Responder::Headers& extra) const {
  std::string h = "HTTP/1.1 " + std::to_string(status) + " " + http::reason_phrase(status) + "\r\n";
  if (!content_type.empty()) {
    h += "Content-Type: ";
    h += content_type;
    h += "\r\n";
  }
  for (const auto& [name, value] : extra) h += name + ": " + value + "\r\n";
  return h;
}

void ServerConnection::send_whole(int status, std::string_view content_type, std::string_view body,
                                  const Responder::Headers& extra) {
  // RFC 9110 §6.4.1: 1xx, 204 and 304 carry no content.
  const bool bodiless = status < 200 || status == 204 || status == 304;
  std::string out = head_lines(status, bodiless ? std::string_view() : content_type, extra);
  if (!bodiless) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  out += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!bodiless && !head_request_) out += body;
  write(std::move(out));
}

void ServerConnection::reject(int status, std::string_view reason) {
  // head_request_ holds only while the current request's head is known (on_head() to
  // finish_response()): a HEAD refused for its length gets its head alone, while an error
  // before any head (timeout, garbage, an oversized head) gets the reason as a body.
  keep_alive_ = false;
  send_whole(status, "application/json", json_error(reason), {});
  finish_and_close();
}

void ServerConnection::finish_response() {
  pending_ = false;
  out_ = Out::idle;
  head_request_ = false;  // the next request's method is not known yet
  if (closing_) return;
  restart_idle();
  if (!keep_alive_) {
    finish_and_close();
    return;
  }
  // A synchronous answer returns into process(), whose loop picks up the next request.
  if (!in_process_) process();
}

// ---- responding (via Responder) ----

void ServerConnection::respond(uint64_t seq, int status, std::string_view content_type,
                               std::string_view body, const Responder::Headers& extra) {
  if (!accepts(seq) || out_ != Out::idle) return;
  send_whole(status, content_type, body, extra);
  finish_response();
}

void ServerConnection::begin(uint64_t seq, int status, std::string_view content_type,
                             const Responder::Headers& extra) {
  if (!accepts(seq) || out_ != Out::idle) return;
  out_ = Out::streaming;
  std::string out = head_lines(status, content_type, extra);
  if (http10_) {
    // HTTP/1.0 has no chunked encoding: the end of the body is the end of the connection.
    chunked_out_ = false;
    keep_alive_ = false;
  } else {
    chunked_out_ = true;
    out += "Transfer-Encoding: chunked\r\n";
  }
  out += keep_alive_ ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  write(std::move(out));
}

void ServerConnection::chunk(uint64_t seq, std::string_view data) {
  // An empty chunk would end the stream early; HEAD sends no body at all.
  if (!accepts(seq) || out_ != Out::streaming || data.empty() || head_request_) return;
  if (!chunked_out_) {
    write(std::string(data));
    return;
  }
  char size[24];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out.append(data);
  out.append("\r\n");
  write(std::move(out));
}

void ServerConnection::end(uint64_t seq) {
  if (!accepts(seq) || out_ != Out::streaming) return;
  if (chunked_out_ && !head_request_) write("0\r\n\r\n");
  finish_response();
}

void ServerConnection::abort(uint64_t seq) {
  if (!accepts(seq)) return;
  close_now(true);
}

// ---- upgraded connections ----

void ServerConnection::raw_write(std::string data) {
  if (raw_alive()) write(std::move(data));
}

void ServerConnection::raw_close() {
  if (raw_alive()) finish_and_close();
}

size_t ServerConnection::write_queue_bytes() const { return write_bytes_pending_; }

RawConnection::RawConnection(std::weak_ptr<ServerConnection> conn) : conn_(std::move(conn)) {}

void RawConnection::write(std::string data) {
  if (auto c = conn_.lock()) c->raw_write(std::move(data));
}

void RawConnection::close() {
  if (auto c = conn_.lock()) c->raw_close();
}

void RawConnection::close_now(bool reset) {
  if (auto c = conn_.lock()) c->close_now(reset);
}

bool RawConnection::alive() const {
  auto c = conn_.lock();
  return c && c->raw_alive();
}

size_t RawConnection::write_queue_bytes() const {
  auto c = conn_.lock();
  return c ? c->write_queue_bytes() : 0;
}

// ---- Responder ----

Responder::Responder(std::weak_ptr<ServerConnection> conn, uint64_t seq)
    : conn_(std::move(conn)), seq_(seq) {}

void Responder::respond(int status, std::string_view content_type, std::string_view body,
                        const Headers& extra) {
  if (auto c = conn_.lock()) c->respond(seq_, status, content_type, body, extra);
}

void Responder::begin(int status, std::string_view content_type, const Headers& extra) {
  if (auto c = conn_.lock()) c->begin(seq_, status, content_type, extra);
}

void Responder::chunk(std::string_view data) {
  if (auto c = conn_.lock()) c->chunk(seq_, data);
}

void Responder::end() {
  if (auto c = conn_.lock()) c->end(seq_);
}

void Responder::abort() {
  if (auto c = conn_.lock()) c->abort(seq_);
}

RawConnection Responder::switch_protocols(std::string head, RawHandlers handlers) {
  auto c = conn_.lock();
  if (!c || !c->switch_protocols(seq_, std::move(head), std::move(handlers))) return {};
  return RawConnection(c);
}

bool Responder::alive() const {
  auto c = conn_.lock();
  return c && c->accepts(seq_);
}

}  // namespace lb::net
