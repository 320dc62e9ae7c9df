#pragma once
// `corral-bench load --ws`: every simulated user holds one WebSocket and sends JSON-RPC
// 2.0 requests over it as masked text frames; answers are matched by id, so several
// messages may be in flight on one socket. Open loop (rate > 0): each socket sends on a
// fixed schedule and a message's latency counts from its scheduled time, as the HTTP load
// does; closed loop: the next message when the last answer arrives. The 101's backend
// header is the user's backend, recorded at every (re)connect, so stickiness across
// reconnects shows; closes the server starts are counted by code (1006: the TCP
// connection ended without a close frame) and followed by a reconnect after a back-off.
// One libuv loop per worker thread; steady state never allocates.
#include "bench/load_client.h"

namespace bench {

// Runs one WebSocket worker to spec.end_ns on the calling thread.
void run_ws_worker(const LoadSpec& spec, LoadResult& out, LoadLive& live);

}  // namespace bench
