#include "lb/net/http_probe.h"

#include "lb/http/dechunk.h"
#include "lb/http/message_parser.h"

namespace lb::net {
namespace {

constexpr size_t kMaxHead = 16384;
constexpr size_t kMaxBody = 65536;

struct Probe {
  uv_tcp_t tcp{};
  uv_timer_t timer{};
  uv_connect_t connect{};
  uv_write_t write{};
  std::string request;
  std::string buf;
  std::function<void(ProbeAnswer)> done;
  int open = 2;
  bool finished = false;

  void finish(ProbeAnswer a) {
    if (finished) return;
    finished = true;
    uv_timer_stop(&timer);
    auto cb = std::move(done);
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp), &Probe::on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), &Probe::on_close);
    cb(std::move(a));
  }
  void fail(const std::string& why) { finish({0, {}, why}); }

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

  static void on_close(uv_handle_t* h) {
    auto* p = static_cast<Probe*>(h->data);
    if (--p->open == 0) delete p;
  }
  static void on_timer(uv_timer_t* t) { static_cast<Probe*>(t->data)->fail("timeout"); }
  static void on_connect(uv_connect_t* req, int status) {
    auto* p = static_cast<Probe*>(req->data);
    if (p->finished) return;
    if (status != 0) {
      ProbeAnswer a{0, {}, std::string("connect: ") + uv_strerror(status)};
      a.connect_failed = true;
      return p->finish(std::move(a));
    }
    uv_buf_t b = uv_buf_init(p->request.data(), static_cast<unsigned>(p->request.size()));
    int rc = uv_write(&p->write, reinterpret_cast<uv_stream_t*>(&p->tcp), &b, 1, &Probe::on_write);
    if (rc != 0) return p->fail(std::string("write: ") + uv_strerror(rc));
    uv_read_start(reinterpret_cast<uv_stream_t*>(&p->tcp), &Probe::on_alloc, &Probe::on_read);
  }
  static void on_write(uv_write_t* req, int status) {
    auto* p = static_cast<Probe*>(req->data);
    if (status != 0 && !p->finished) p->fail(std::string("write: ") + uv_strerror(status));
  }
  static void on_alloc(uv_handle_t* h, size_t, uv_buf_t* b) {
    auto* p = static_cast<Probe*>(h->data);
    size_t old = p->buf.size();
    p->buf.resize(old + 16384);
    *b = uv_buf_init(p->buf.data() + old, 16384);
  }
  static void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
    auto* p = static_cast<Probe*>(s->data);
    size_t used = static_cast<size_t>(b->base - p->buf.data()) + (n > 0 ? n : 0);
    p->buf.resize(used);
    if (p->finished) return;
    if (n == UV_EOF) return p->parse(true);
    if (n < 0) return p->fail(std::string("read: ") + uv_strerror(static_cast<int>(n)));
    if (p->buf.size() > kMaxHead + kMaxBody) return p->fail("answer too large");
    p->parse(false);
  }
};

}  // namespace

void http_probe(uv_loop_t* loop, const sockaddr_storage& addr, const std::string& host,
                const std::string& path, uint64_t timeout_ms,
                std::function<void(ProbeAnswer)> done) {
  auto* p = new Probe;
  p->done = std::move(done);
  p->request = "GET " + path + " HTTP/1.1\r\nHost: " + host +
               "\r\nAccept: application/json\r\nUser-Agent: corral-health\r\n"
               "Connection: close\r\n\r\n";
  uv_tcp_init(loop, &p->tcp);
  uv_timer_init(loop, &p->timer);
  p->tcp.data = p->timer.data = p->connect.data = p->write.data = p;
  uv_timer_start(&p->timer, &Probe::on_timer, timeout_ms, 0);
  int rc = uv_tcp_connect(&p->connect, &p->tcp, reinterpret_cast<const sockaddr*>(&addr),
                          &Probe::on_connect);
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
