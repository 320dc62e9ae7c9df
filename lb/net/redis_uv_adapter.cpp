#include "lb/net/redis_uv_adapter.h"

#include <hiredis/async.h>

namespace lb::net {

namespace {

struct UvEvents {
  redisAsyncContext* context;
  uv_poll_t handle;
  int events;
};

void uv_events_poll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<UvEvents*>(handle->data);
  int ev = status ? p->events : events;
  if (p->context != nullptr && (ev & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context != nullptr && (ev & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

void uv_events_set(UvEvents* p, int events) {
  p->events = events;
  if (events)
    uv_poll_start(&p->handle, events, uv_events_poll);
  else
    uv_poll_stop(&p->handle);
}

void uv_add_read(void* d) {
  auto* p = static_cast<UvEvents*>(d);
  uv_events_set(p, p->events | UV_READABLE);
}
void uv_del_read(void* d) {
  auto* p = static_cast<UvEvents*>(d);
  uv_events_set(p, p->events & ~UV_READABLE);
}
void uv_add_write(void* d) {
  auto* p = static_cast<UvEvents*>(d);
  uv_events_set(p, p->events | UV_WRITABLE);
}
void uv_del_write(void* d) {
  auto* p = static_cast<UvEvents*>(d);
  uv_events_set(p, p->events & ~UV_WRITABLE);
}
// The context is being freed: the poll handle (and p) are freed in the close callback, so
// the loop must run once more.
void uv_cleanup(void* d) {
  auto* p = static_cast<UvEvents*>(d);
  p->context = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
           [](uv_handle_t* h) { delete static_cast<UvEvents*>(h->data); });
}

}  // namespace

bool redis_uv_attach(redisAsyncContext* ac, uv_loop_t* loop) {
  if (ac->ev.data != nullptr) return false;
  auto* p = new UvEvents{ac, {}, 0};
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    delete p;
    return false;
  }
  p->handle.data = p;
  ac->ev.addRead = uv_add_read;
  ac->ev.delRead = uv_del_read;
  ac->ev.addWrite = uv_add_write;
  ac->ev.delWrite = uv_del_write;
  ac->ev.cleanup = uv_cleanup;
  ac->ev.data = p;
  return true;
}

}  // namespace lb::net
