#pragma once
// The report of `corral-bench load`: a wrk-like text summary, one JSON object, and a
// self-contained SVG (bench/load_svg.h).
#include <cstdio>
#include <string>

#include "bench/load_client.h"

namespace bench {

struct LoadReport {
  // The run as asked.
  std::string url;
  std::string method;
  uint32_t connections = 0;
  uint32_t threads = 1;
  uint32_t users = 0;
  std::string key;  // "header:X-Session-Key", "address", ... or "" for none
  std::string backend_header;
  double target_rate = 0;  // 0: closed loop
  double duration_s = 0;
  double warmup_s = 0;
  bool ws = false;  // --ws: requests are JSON-RPC messages, statuses the handshakes'
  std::string ws_method;
  uint64_t ws_reconnect_every = 0;
  std::string mix;  // "lucid" with --mix, else ""
  LucidMix mix_params;
  uint64_t null_percent = 0;  // the null set the wrong-answer check assumed
  // What was measured, every worker merged.
  LoadResult merged;
  uint64_t sticky_violations = 0;
  uint64_t users_seen = 0;  // users with at least one backend header recorded
  // Checkpoint regressions (load_checkpoints.h): tracked with --users over HTTP; the counts
  // are in merged.regressions, the users from the shared per-user table.
  bool checkpoints_tracked = false;
  uint64_t regression_users = 0;

  bool open_loop() const { return target_rate > 0; }
  double rate() const { return duration_s > 0 ? double(merged.requests) / duration_s : 0; }
  uint64_t errors_total() const;
  // --ws: handshakes answered with anything but a valid 101.
  uint64_t ws_handshake_failures() const;
  // Requests that got no good answer, over all that ended: HTTP, answers outside 2xx plus
  // errors (timeouts, resets, ...); --ws, errors, messages lost with their socket and
  // failed handshakes. 0 when nothing ended. `--max-error-rate` compares it.
  uint64_t failed_requests() const;
  double error_rate() const;
};

// Merges `w` into `into`, mapping backend ids by name.
void merge_result(LoadResult& into, const LoadResult& w);
// Counts users that saw more than one distinct backend.
void finish_report(LoadReport& r);

void print_text(const LoadReport& r, FILE* out);
void print_json(const LoadReport& r, FILE* out);

}  // namespace bench
