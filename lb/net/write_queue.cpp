#include "lb/net/write_queue.h"

namespace lb::net {

WriteQueue::WriteQueue(uv_stream_t* stream, void* owner, void (*on_drained)(void*),
                       void (*on_error)(void*, int))
    : stream_(stream), owner_(owner), on_drained_(on_drained), on_error_(on_error) {
  req_.data = this;
}

bool WriteQueue::write(const uv_buf_t* bufs, unsigned nbufs) {
  if (failed_) return false;
  unsigned i = 0;
  size_t skip = 0;  // bytes of bufs[i] already written
  if (!writing_ && staging_.empty()) {
    int n = uv_try_write(stream_, bufs, nbufs);
    if (n == UV_EAGAIN || n == UV_ENOSYS) n = 0;
    if (n < 0) {
      failed_ = true;
      on_error_(owner_, n);
      return false;
    }
    size_t written = static_cast<size_t>(n);
    while (i < nbufs && written >= bufs[i].len) written -= bufs[i++].len;
    skip = written;
  }
  for (; i < nbufs; ++i, skip = 0)
    staging_.insert(staging_.end(), bufs[i].base + skip, bufs[i].base + bufs[i].len);
  if (!staging_.empty() && !writing_) flush();
  return !failed_;
}

bool WriteQueue::write(std::string_view a, std::string_view b) {
  uv_buf_t bufs[2] = {uv_buf_init(const_cast<char*>(a.data()), static_cast<unsigned>(a.size())),
                      uv_buf_init(const_cast<char*>(b.data()), static_cast<unsigned>(b.size()))};
  return write(bufs, b.empty() ? 1 : 2);
}

void WriteQueue::flush() {
  inflight_.swap(staging_);
  staging_.clear();
  uv_buf_t buf = uv_buf_init(inflight_.data(), static_cast<unsigned>(inflight_.size()));
  int rc = uv_write(&req_, stream_, &buf, 1, &WriteQueue::on_write);
  if (rc != 0) {
    inflight_.clear();
    failed_ = true;
    on_error_(owner_, rc);
    return;
  }
  writing_ = true;
}

void WriteQueue::on_write(uv_write_t* req, int status) {
  auto* q = static_cast<WriteQueue*>(req->data);
  q->writing_ = false;
  q->inflight_.clear();
  if (status != 0) {
    // UV_ECANCELED: the stream is closing; the owner already knows.
    if (status != UV_ECANCELED && !q->failed_) {
      q->failed_ = true;
      q->on_error_(q->owner_, status);
    }
    q->failed_ = true;
    return;
  }
  if (q->failed_) return;
  if (!q->staging_.empty()) {
    q->flush();
    return;
  }
  q->on_drained_(q->owner_);
}

void WriteQueue::discard() {
  staging_.clear();
  failed_ = true;
}

}  // namespace lb::net
