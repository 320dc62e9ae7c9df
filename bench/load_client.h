#pragma once
// The connections of `corral-bench load`: one worker per thread, each with its own libuv
// loop and its share of keep-alive HTTP/1.1 connections, one request in flight on each.
// Open loop (rate > 0) follows wrk2: every connection sends on a fixed schedule and a
// request's latency counts from its scheduled time, so a stall shows in full instead of
// being hidden by the requests the stall kept from being sent (coordinated omission).
// Closed loop (rate 0) follows wrk: send the next request as soon as the last answer ends.
// Steady state never allocates: each connection pre-formats its request and patches the
// fixed-width user key in place; buffers and histograms are sized once.
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bench/hdr_histogram.h"
#include "bench/load_checkpoints.h"
#include "bench/load_mix.h"
#include "lb/core/cip19.h"

namespace bench {

enum class KeyKind : uint8_t { none, header, cookie, path, address };

enum ErrorKind : uint8_t { err_connect, err_reset, err_timeout, err_parse, kErrorKinds };
inline constexpr const char* kErrorNames[kErrorKinds] = {"connect", "reset", "timeout", "parse"};

struct LoadSpec {
  sockaddr_storage addr{};
  std::string host_header;  // "127.0.0.1:8080"
  std::string path = "/";   // with the query
  std::string method = "GET";
  std::vector<std::string> headers;  // "K: V"
  KeyKind key = KeyKind::none;
  std::string key_name;  // header or cookie name
  uint32_t users = 0;
  std::string backend_header;  // empty: not recorded
  // Per user, the highest X-Most-Recent-Checkpoint received, shared by all workers;
  // null: not tracked (no users, or --ws).
  UserCheckpoints* checkpoints = nullptr;
  uint32_t connections = 10;  // this worker's
  double rate = 0;            // this worker's requests/s; 0 = closed loop
  uint64_t timeout_ns = 5'000'000'000ULL;
  uint32_t thread_index = 0;
  uint32_t thread_count = 1;
  // Absolute uv_hrtime() instants shared by all workers.
  uint64_t start_ns = 0;          // first scheduled request
  uint64_t measure_start_ns = 0;  // after warmup
  uint64_t end_ns = 0;
  bool live = false;  // publish a histogram snapshot each second for the progress line
  // --mix lucid (load_mix.h): each request's target is drawn from the mix and appended to
  // `path` (its trailing '/' and any query dropped); null_percent is the backends' null set,
  // for the wrong-answer check.
  std::optional<LucidMix> mix;
  uint64_t null_percent = 5;
  // --ws (load_ws.h): `connections` sockets, socket i held by user thread_index +
  // thread_count * i, sending JSON-RPC text frames.
  bool ws = false;
  std::string ws_method = "queryNetwork/tip";
  std::string ws_params;            // JSON; empty: no "params" member
  uint64_t ws_reconnect_every = 0;  // messages per socket before closing it with 1000; 0: never
  uint64_t ws_backoff_ms = 50;      // before reconnecting after a server close or failed handshake
};

// Answers by status class, and failures, for the per-second chart: a 503 is a backend
// (or corral) saying "too busy", not an answer a user can use, so it is drawn apart from
// the 2xx.
enum AnswerClass : uint8_t { class_2xx, class_503, class_other, class_error, kAnswerClasses };
inline constexpr const char* kAnswerClassNames[kAnswerClasses] = {"2xx", "503", "other non-2xx",
                                                                  "errors"};
// The class of an answer with HTTP status `status`.
inline AnswerClass answer_class(int status) {
  if (status >= 200 && status < 300) return class_2xx;
  return status == 503 ? class_503 : class_other;
}

// What a worker measured, over the measurement window only.
struct LoadResult {
  HdrHistogram latency;      // open loop: from the scheduled time (corrected)
  HdrHistogram uncorrected;  // from the actual send
  uint64_t requests = 0;     // answered within the window
  uint64_t unfinished = 0;  // open loop: due before the end, unanswered (in `latency` as end - due)
  std::array<uint64_t, 600> statuses{};
  std::array<uint64_t, kErrorKinds> errors{};
  std::vector<uint64_t> per_second;  // answers completed in each second of the window
  // The same seconds by class; errors (timeouts, resets, ...) in class_error.
  std::vector<std::array<uint64_t, kAnswerClasses>> per_second_class;
  std::vector<std::string> backends;    // backend header values seen, by id
  std::vector<uint64_t> user_backends;  // per user: bit i = saw backends[i]
  RegressionCount regressions;          // checkpoint regressions (load_checkpoints.h)
  uint64_t bytes_read = 0;
  MixResult mix;  // --mix only
  // --ws only (statuses then counts handshake answers: 101 and the failures). Connection
  // events count over the whole run, warmup included; messages over the window.
  uint64_t ws_sent = 0;           // messages sent in the window
  uint64_t ws_lost = 0;           // sent in the window, unanswered when their socket closed
  uint64_t ws_unmatched = 0;      // text/binary messages with no id we are waiting for
  uint64_t ws_handshakes = 0;     // 101 with the right Sec-WebSocket-Accept
  uint64_t ws_bad_accept = 0;     // 101 without Upgrade: websocket or with a wrong accept key
  uint64_t ws_client_closes = 0;  // sockets we closed (1000) for --ws-reconnect-every
  std::map<uint16_t, uint64_t> ws_close_codes;  // closes the server started; 1006: no frame
};

// Counters the main thread reads while the run goes on.
struct LoadLive {
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
  std::mutex mu;
  HdrHistogram snapshot;  // under mu
};

// Runs one worker to spec.end_ns on the calling thread.
void run_load_worker(const LoadSpec& spec, LoadResult& out, LoadLive& live);

// The key of a user: fixed width, so it can be patched into a pre-formatted request.
inline constexpr size_t kUserKeyWidth = 13;  // "user-" + 8 digits
void format_user_key(uint32_t user, char out[kUserKeyWidth]);

// A CIP-19 mainnet base address (header 0x01: key hash payment, key hash stake) in
// bech32 with HRP "addr": the payment part differs for every `seq`, the stake credential
// is the user's, so all addresses of one user belong to one wallet.
inline constexpr size_t kAddressWidth = 103;  // "addr1" + 92 data + 6 checksum characters
static_assert(kAddressWidth == lb::bech32_encoded_size(4, 57));
void format_base_address(uint32_t user, uint64_t seq, char out[kAddressWidth]);

}  // namespace bench
