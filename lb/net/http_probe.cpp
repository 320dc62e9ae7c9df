#include "lb/net/http_probe.h"

#include <memory>

#include "lb/http/dechunk.h"
#include "lb/http/message_parser.h"
#include "lb/net/tcp_stream.h"
#include "lb/net/tls_stream.h"

namespace lb::net {
namespace {

constexpr size_t kMaxHead = 16384;
constexpr size_t kMaxBody = 65536;

// Probes run on the control thread, a few at a time: their read buffers come from a pool
// of that thread's own, outside the workers' budget.
BufferPool& probe_buffers() {
  thread_local BufferBudget budget;
  thread_local BufferPool pool(budget, 16384, 8);
  return pool;
}

struct Probe final : StreamHandler {
  std::unique_ptr<Stream> stream;
  TlsStream* tls = nullptr;  // the stream, when it is TLS
  uv_timer_t timer{};
  std::string request;
  std::string buf;
  std::function<void(ProbeAnswer)> done;
  int open = 2;  // the stream and the timer
  bool finished = false;

  void finish(ProbeAnswer a) {
    if (finished) return;
    finished = true;
    uv_timer_stop(&timer);
    auto cb = std::move(done);
    stream->close();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), &Probe::on_timer_close);
    cb(std::move(a));
  }
  void fail(const std::string& why) { finish({0, {}, why}); }
  std::string error_text(const char* what, int error) {
    if (tls && error == TlsStream::kTlsError) return "tls: " + tls->tls_error();
    return std::string(what) + ": " + uv_strerror(error);
  }

  // Parses everything that has arrived, from the start (answers are small, and the
  // buffer moves as it grows); finishes on a complete answer or an error.
  void parse(bool eof) {
    http::MessageParser parser(http::MessageParser::Kind::response, kMaxHead);
    size_t body_start = 0;
    http::ParseResult r = parser.feed(buf.data(), buf.size());
    if (r.status == http::ParseStatus::head) {
      body_start = r.consumed;
      parser.resume_after_head();
      r = parser.feed(buf.data() + body_start, buf.size() - body_start);
    }
    if (r.status == http::ParseStatus::error || r.status == http::ParseStatus::upgrade)
      return fail("bad HTTP answer");
    size_t body_end = body_start + r.consumed;
    if (r.status == http::ParseStatus::need_more) {
      if (!eof) return;  // wait for more
      if (body_start == 0 || parser.finish() != http::ParseStatus::done)
        return fail("answer cut short");
    }
    ProbeAnswer a;
    a.status = parser.status_code();
    std::string_view raw(buf.data() + body_start, body_end - body_start);
    if (!parser.chunked())
      a.body.assign(raw);
    else if (!http::dechunk(raw, a.body))
      return fail("bad chunked body");
    finish(std::move(a));
  }

  // StreamHandler
  void on_connected(Stream&, int status) override {
    if (finished) return;
    if (status != 0) {
      ProbeAnswer a{0, {}, error_text("connect", status)};
      // A TLS failure reached the backend: another address would say the same.
      a.connect_failed = !(tls && status == TlsStream::kTlsError);
      return finish(std::move(a));
    }
    stream->write(request);
    stream->read_start();
  }
  void on_readable(Stream& s) override {
    if (finished) return;
    std::string_view in = s.input();
    buf.append(in);
    s.consume(in.size());
    if (buf.size() > kMaxHead + kMaxBody) return fail("answer too large");
    parse(false);
  }
  void on_eof(Stream&) override {
    if (!finished) parse(true);
  }
  void on_stream_error(Stream&, int error) override {
    if (!finished) fail(error_text("read", error));
  }
  void on_drained(Stream&) override {}
  void on_closed(Stream&) override { closed_one(); }

  void closed_one() {
    if (--open == 0) delete this;
  }
  static void on_timer_close(uv_handle_t* h) { static_cast<Probe*>(h->data)->closed_one(); }
  static void on_timer(uv_timer_t* t) { static_cast<Probe*>(t->data)->fail("timeout"); }
};

}  // namespace

void http_probe(uv_loop_t* loop, const sockaddr_storage& addr, const std::string& host,
                const std::string& path, uint64_t timeout_ms, const ProbeTls* tls,
                std::string_view extra_headers, std::function<void(ProbeAnswer)> done) {
  auto* p = new Probe;
  p->done = std::move(done);
  p->request = "GET " + path + " HTTP/1.1\r\nHost: " + host +
               "\r\nAccept: application/json\r\nUser-Agent: corral-health\r\n";
  p->request.append(extra_headers).append("Connection: close\r\n\r\n");
  std::unique_ptr<Stream> tcp = std::make_unique<TcpStream>(loop, probe_buffers());
  tcp->set_exempt(true);
  if (tls) {
    auto t = std::make_unique<TlsStream>(std::move(tcp), tls->ctx.get(), TlsStream::Mode::client);
    t->set_exempt(true);
    t->set_peer_name(tls->server_name);
    p->tls = t.get();
    p->stream = std::move(t);
  } else {
    p->stream = std::move(tcp);
  }
  p->stream->set_handler(p);
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, &Probe::on_timer, timeout_ms, 0);
  int rc = p->stream->connect(reinterpret_cast<const sockaddr*>(&addr));
  if (rc == UV_EMFILE || rc == UV_ENFILE) {
    // corral is out of descriptors: says nothing about the backend.
    p->finish({0, {}, std::string("connect: ") + uv_strerror(rc), true});
    return;
  }
  if (rc != 0) {
    ProbeAnswer a{0, {}, std::string("connect: ") + uv_strerror(rc)};
    a.connect_failed = true;
    p->finish(std::move(a));
  }
}

}  // namespace lb::net
