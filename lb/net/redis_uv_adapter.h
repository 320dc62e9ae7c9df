#pragma once
// hiredis' libuv adapter, as in hiredis 1.0, for hiredis 0.14's async contexts. The 0.14
// adapter returns on a nonzero poll status, but libuv reports an error on the socket (a
// reset from a killed Redis) as UV_EBADF and stops the poll: the context would hang until
// the link's stuck detection. Here an error status runs the registered handlers, whose read
// or write then fails and disconnects the context.
#include <uv.h>

struct redisAsyncContext;

namespace lb::net {

// Attaches `ac` to `loop` (false: already attached, or uv_poll_init failed; nothing leaks).
// When hiredis frees the context, the poll handle is closed and freed in its close
// callback: the loop must run once more.
bool redis_uv_attach(redisAsyncContext* ac, uv_loop_t* loop);

}  // namespace lb::net
