#include "lb/net/tcp_stream.h"

#include <cstring>

namespace lb::net {
namespace {
// libuv copies a uv_write's buffer list to the heap beyond four entries.
constexpr unsigned kMaxIov = 4;
}  // namespace

TcpStream::TcpStream(uv_loop_t* loop, BufferPool& pool) : Stream(pool) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
}

TcpStream::~TcpStream() { drop_output(); }

int TcpStream::connect(const sockaddr* addr) {
  auto* req = new uv_connect_t;  // once per upstream connection, not per request
  req->data = this;
  int rc = uv_tcp_connect(req, &tcp_, addr, &TcpStream::on_connect);
  if (rc != 0) {
    delete req;
    return rc;
  }
  uv_tcp_nodelay(&tcp_, 1);
  return 0;
}

void TcpStream::on_connect(uv_connect_t* req, int status) {
  auto* s = static_cast<TcpStream*>(req->data);
  delete req;
  if (status == UV_ECANCELED || s->closing_) return;  // closed while connecting
  if (s->handler_) s->handler_->on_connected(*s, status);
}

void TcpStream::read_start() {
  if (closing_ || failed_) return;
  starved_ = false;
  if (reading_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &TcpStream::on_alloc,
                    &TcpStream::on_read) == 0)
    reading_ = true;
}

void TcpStream::read_stop() {
  starved_ = false;
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void TcpStream::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* s = static_cast<TcpStream*>(h->data);
  size_t len = 0;
  char* p = s->read_space(len);
  *buf = uv_buf_init(p, static_cast<unsigned>(len));  // len 0: libuv reports UV_ENOBUFS
}

void TcpStream::on_read(uv_stream_t* st, ssize_t nread, const uv_buf_t*) {
  auto* s = static_cast<TcpStream*>(st->data);
  if (s->closing_) return;
  if (nread == 0) {  // EAGAIN: nothing after all; keep no empty buffer
    if (s->in_ && s->in_->empty() && !s->held_) s->drop_input();
    return;
  }
  if (nread == UV_ENOBUFS) {
    bool budget = !s->in_;  // no buffer could be had, rather than a full one
    s->read_stop();
    s->starved_ = budget;  // the handler sees starved() and retries later
    if (s->handler_) s->handler_->on_readable(*s);
    return;
  }
  if (nread < 0) {
    if (s->in_ && s->in_->empty() && !s->held_) s->drop_input();
    s->read_stop();
    if (nread == UV_EOF) {
      if (s->handler_) s->handler_->on_eof(*s);
    } else {
      s->fail(static_cast<int>(nread));
    }
    return;
  }
  s->commit_read(static_cast<size_t>(nread));
  if (s->handler_) s->handler_->on_readable(*s);
}

uint64_t TcpStream::sent() const {
  // libuv lowers the queue size as a write goes out piece by piece; a steady reader of a
  // large write makes progress long before the write completes.
  size_t queued = uv_stream_get_write_queue_size(reinterpret_cast<const uv_stream_t*>(&tcp_));
  return sent_ + (inflight_bytes_ > queued ? inflight_bytes_ - queued : 0);
}

bool TcpStream::write(const std::string_view* parts, size_t n) {
  if (failed_ || closing_) return false;
  size_t i = 0, skip = 0;
  if (!writing_ && !out_head_) {
    uv_buf_t bufs[kMaxIov];
    unsigned nb = 0;
    for (size_t k = 0; k < n && nb < kMaxIov; ++k)
      if (!parts[k].empty())
        bufs[nb++] =
            uv_buf_init(const_cast<char*>(parts[k].data()), static_cast<unsigned>(parts[k].size()));
    int w = nb ? uv_try_write(reinterpret_cast<uv_stream_t*>(&tcp_), bufs, nb) : 0;
    // Any error (a reset peer too) is left to the uv_write below, which reports it from
    // its callback: a handler told of it inside write() would tear down its connection
    // under a caller that still uses it.
    if (w < 0) w = 0;
    sent_ += static_cast<uint64_t>(w);
    size_t written = static_cast<size_t>(w);
    while (i < n && written >= parts[i].size()) written -= parts[i++].size();
    skip = written;
  }
  for (; i < n; ++i, skip = 0) append(parts[i].data() + skip, parts[i].size() - skip);
  if (out_head_ && !writing_) flush();
  return !failed_;
}

void TcpStream::append(const char* p, size_t n) {
  while (n > 0) {
    Buffer* t = out_tail_;
    if (!t || t == inflight_last_ || t->room() == 0) {
      t = pool_->acquire();
      if (out_tail_)
        out_tail_->next = t;
      else
        out_head_ = t;
      out_tail_ = t;
    }
    size_t k = n < t->room() ? n : t->room();
    std::memcpy(t->data() + t->end, p, k);
    t->end += k;
    pending_ += k;
    p += k;
    n -= k;
  }
}

void TcpStream::flush() {
  uv_buf_t bufs[kMaxIov];
  unsigned nb = 0;
  Buffer* b = out_head_;
  for (; b && nb < kMaxIov; b = b->next) {
    bufs[nb++] = uv_buf_init(const_cast<char*>(b->begin()), static_cast<unsigned>(b->size()));
    inflight_last_ = b;
    inflight_bytes_ += b->size();
  }
  out_head_->req.data = this;
  int rc = uv_write(&out_head_->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, nb,
                    &TcpStream::on_write);
  if (rc != 0) {
    // Refused outright (the handle is shutting down): nothing will be written. Not reported
    // from here (see write()); the read side or the owner's deadline ends the connection.
    inflight_last_ = nullptr;
    inflight_bytes_ = 0;
    failed_ = write_failed_ = true;
    drop_output();
    return;
  }
  writing_ = true;
}

void TcpStream::on_write(uv_write_t* req, int status) {
  auto* s = static_cast<TcpStream*>(req->data);
  s->writing_ = false;
  // Give back the buffers of this write; the request lives in the first of them and
  // libuv is done with it.
  Buffer* last = s->inflight_last_;
  s->inflight_last_ = nullptr;
  s->inflight_bytes_ = 0;
  for (Buffer* b = s->out_head_; b;) {
    Buffer* next = b->next;
    s->pending_ -= b->size();
    if (status == 0) s->sent_ += b->size();
    s->pool_->release(b);
    if (b == last) {
      s->out_head_ = next;
      break;
    }
    b = next;
  }
  if (!s->out_head_) s->out_tail_ = nullptr;
  if (status != 0) {
    // UV_ECANCELED: closing; the owner knows.
    if (status != UV_ECANCELED) {
      s->write_failed_ = true;
      s->fail(status);
    }
    return;
  }
  if (s->failed_ || s->closing_) return;
  if (s->out_head_) {
    s->flush();
    return;
  }
  if (s->shutdown_wanted_) {
    s->shutdown_wanted_ = false;
    s->shutdown();
  }
  if (s->handler_) s->handler_->on_drained(*s);
}

void TcpStream::shutdown() {
  if (closing_ || failed_) return;
  if (pending_ > 0) {  // libuv would wait too, but we keep our own queue
    shutdown_wanted_ = true;
    return;
  }
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), &TcpStream::on_shutdown) != 0) {
    delete req;  // not writable any more: nothing to shut; the owner's deadline closes it
    failed_ = true;
  }
}

void TcpStream::on_shutdown(uv_shutdown_t* req, int status) {
  auto* s = static_cast<TcpStream*>(req->data);
  delete req;
  if (status != 0 && status != UV_ECANCELED && !s->closing_) s->fail(status);
}

void TcpStream::fail(int error) {
  if (failed_) return;
  failed_ = true;
  drop_output();
  if (handler_ && !closing_) handler_->on_stream_error(*this, error);
}

void TcpStream::drop_output() {
  if (writing_) return;  // the write callback gives those back (with UV_ECANCELED)
  while (out_head_) {
    Buffer* b = out_head_;
    out_head_ = b->next;
    pool_->release(b);
  }
  out_tail_ = nullptr;
  pending_ = 0;
}

void TcpStream::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  drop_input();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &TcpStream::on_close);
}

void TcpStream::on_close(uv_handle_t* h) {
  auto* s = static_cast<TcpStream*>(h->data);
  // Pending writes were cancelled before this callback, so every buffer is back.
  s->drop_output();
  if (s->handler_) s->handler_->on_closed(*s);
}

}  // namespace lb::net
