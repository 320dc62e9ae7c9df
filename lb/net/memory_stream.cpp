#include "lb/net/memory_stream.h"

#include <uv.h>

#include <algorithm>
#include <cstring>

namespace lb::net {
namespace {
thread_local std::vector<MemoryStream*> closing;
}  // namespace

void MemoryPeer::send(std::string_view bytes) {
  if (!stream || stream->closing_) return;
  stream->queued_.append(bytes);
  stream->deliver();
}

void MemoryPeer::send_eof() {
  if (!stream || stream->closing_) return;
  stream->eof_queued_ = true;
  stream->deliver();
}

void MemoryPeer::fail(int error) {
  if (!stream || stream->closing_ || stream->failed_) return;
  stream->failed_ = true;
  stream->reading_ = false;
  if (stream->handler()) stream->handler()->on_stream_error(*stream, error);
}

void MemoryPeer::answer_connect(int status) {
  if (!stream || stream->closing_ || !connect_started) return;
  connect_started = false;
  if (stream->handler()) stream->handler()->on_connected(*stream, status);
}

std::string MemoryPeer::take() {
  std::string out;
  out.swap(written);
  return out;
}

void MemoryPeer::release() {
  stalled = false;
  written.append(held);
  held.clear();
  if (stream && !stream->closing_ && stream->handler()) stream->handler()->on_drained(*stream);
}

void MemoryPeer::read_some(size_t n) {
  n = std::min(n, held.size());
  written.append(held, 0, n);
  held.erase(0, n);
  if (held.empty() && stream && !stream->closing_ && stream->handler())
    stream->handler()->on_drained(*stream);
}

MemoryStream::MemoryStream(BufferPool& pool, std::shared_ptr<MemoryPeer> peer)
    : Stream(pool), peer_(std::move(peer)) {
  peer_->stream = this;
}

MemoryStream::~MemoryStream() { peer_->stream = nullptr; }

int MemoryStream::connect(const sockaddr* addr) {
  peer_->connect_started = true;
  std::memcpy(&peer_->connected_to, addr,
              addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
  return 0;
}

void MemoryStream::read_start() {
  if (closing_ || failed_) return;
  starved_ = false;
  reading_ = true;
  deliver();
}

void MemoryStream::deliver() {
  if (delivering_) return;  // a handler re-enabling reading inside on_readable
  delivering_ = true;
  while (reading_ && !closing_ && !queued_.empty()) {
    size_t room = 0;
    char* p = read_space(room);
    if (room == 0) {  // as TcpStream on UV_ENOBUFS: no buffer, or a full one
      starved_ = in_ == nullptr;
      reading_ = false;
      if (handler_) handler_->on_readable(*this);
      break;
    }
    size_t n = room < queued_.size() ? room : queued_.size();
    std::memcpy(p, queued_.data(), n);
    queued_.erase(0, n);
    commit_read(n);
    if (handler_) handler_->on_readable(*this);
  }
  if (reading_ && !closing_ && queued_.empty() && eof_queued_) {
    eof_queued_ = false;
    reading_ = false;
    if (handler_) handler_->on_eof(*this);
  }
  delivering_ = false;
}

bool MemoryStream::write(const std::string_view* parts, size_t n) {
  if (closing_ || failed_) return false;
  for (size_t i = 0; i < n; ++i) {
    (peer_->stalled ? peer_->held : peer_->written).append(parts[i]);
    sent_ += parts[i].size();
  }
  return true;
}

void MemoryStream::shutdown() { peer_->shut = true; }

void MemoryStream::close() {
  if (closing_) return;
  closing_ = true;
  reading_ = false;
  peer_->closed = true;
  drop_input();
  closing.push_back(this);
}

void MemoryStream::settle() {
  while (!closing.empty()) {
    std::vector<MemoryStream*> now;
    now.swap(closing);
    for (MemoryStream* s : now)
      if (s->handler_) s->handler_->on_closed(*s);
  }
}

}  // namespace lb::net
