#include "bench/load_report.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <string>

namespace bench {

uint64_t LoadReport::errors_total() const {
  uint64_t n = 0;
  for (uint64_t e : merged.errors) n += e;
  return n;
}

uint64_t LoadReport::ws_handshake_failures() const {
  uint64_t n = merged.ws_bad_accept;
  for (size_t s = 0; s < merged.statuses.size(); ++s)
    if (s != 101) n += merged.statuses[s];
  return n;
}

uint64_t LoadReport::failed_requests() const {
  uint64_t n = errors_total();
  if (ws) return n + merged.ws_lost + ws_handshake_failures();
  for (size_t s = 0; s < merged.statuses.size(); ++s)
    if (answer_class(int(s)) != class_2xx) n += merged.statuses[s];
  return n;
}

double LoadReport::error_rate() const {
  const uint64_t failed = failed_requests();
  // HTTP: the failed answers are among merged.requests; the errors and the --ws failures
  // are not.
  uint64_t good_or_failed = merged.requests + errors_total();
  if (ws) good_or_failed += merged.ws_lost + ws_handshake_failures();
  return good_or_failed ? double(failed) / double(good_or_failed) : 0.0;
}

void merge_result(LoadResult& into, const LoadResult& w) {
  into.ws_sent += w.ws_sent;
  into.ws_lost += w.ws_lost;
  into.ws_unmatched += w.ws_unmatched;
  into.ws_handshakes += w.ws_handshakes;
  into.ws_bad_accept += w.ws_bad_accept;
  into.ws_client_closes += w.ws_client_closes;
  for (const auto& [code, n] : w.ws_close_codes) into.ws_close_codes[code] += n;
  into.latency.merge(w.latency);
  into.uncorrected.merge(w.uncorrected);
  into.requests += w.requests;
  into.unfinished += w.unfinished;
  into.bytes_read += w.bytes_read;
  into.regressions.merge(w.regressions);
  into.mix.merge(w.mix);
  for (size_t i = 0; i < into.statuses.size(); ++i) into.statuses[i] += w.statuses[i];
  for (size_t i = 0; i < into.errors.size(); ++i) into.errors[i] += w.errors[i];
  if (into.per_second.size() < w.per_second.size()) into.per_second.resize(w.per_second.size());
  for (size_t i = 0; i < w.per_second.size(); ++i) into.per_second[i] += w.per_second[i];
  if (into.per_second_class.size() < w.per_second_class.size())
    into.per_second_class.resize(w.per_second_class.size());
  for (size_t i = 0; i < w.per_second_class.size(); ++i)
    for (size_t k = 0; k < kAnswerClasses; ++k)
      into.per_second_class[i][k] += w.per_second_class[i][k];
  // Worker-local backend ids -> merged ids.
  uint64_t remap[64] = {};
  for (size_t i = 0; i < w.backends.size() && i < 64; ++i) {
    auto it = std::find(into.backends.begin(), into.backends.end(), w.backends[i]);
    size_t id = size_t(it - into.backends.begin());
    if (it == into.backends.end()) {
      if (into.backends.size() >= 64) continue;
      into.backends.push_back(w.backends[i]);
    }
    remap[i] = uint64_t{1} << id;
  }
  if (into.user_backends.size() < w.user_backends.size())
    into.user_backends.resize(w.user_backends.size());
  for (size_t u = 0; u < w.user_backends.size(); ++u)
    for (uint64_t m = w.user_backends[u]; m; m &= m - 1)
      into.user_backends[u] |= remap[std::countr_zero(m)];
}

void finish_report(LoadReport& r) {
  r.sticky_violations = 0;
  r.users_seen = 0;
  for (uint64_t m : r.merged.user_backends) {
    if (m) ++r.users_seen;
    if (std::popcount(m) > 1) ++r.sticky_violations;
  }
}

namespace {

double ms(uint64_t us) { return double(us) / 1000.0; }

std::string fmt_latency(uint64_t us) {
  char b[32];
  if (us < 1000)
    std::snprintf(b, sizeof b, "%luus", (unsigned long)us);
  else if (us < 1'000'000)
    std::snprintf(b, sizeof b, "%.2fms", ms(us));
  else
    std::snprintf(b, sizeof b, "%.2fs", double(us) / 1e6);
  return b;
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      o += '\\';
      o += ch;
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += ch;
    }
  }
  return o + "\"";
}

void json_latency(FILE* out, const HdrHistogram& h) {
  std::fprintf(out,
               "{\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"p999\": %.3f, \"max\": %.3f, "
               "\"mean\": %.3f, \"count\": %lu}",
               ms(h.percentile(50)), ms(h.percentile(90)), ms(h.percentile(99)),
               ms(h.percentile(99.9)), ms(h.max()), h.mean() / 1000.0, (unsigned long)h.count());
}

}  // namespace

void print_text(const LoadReport& r, FILE* out) {
  const LoadResult& m = r.merged;
  std::fprintf(out, "Running %.1fs %stest @ %s\n", r.duration_s, r.ws ? "WebSocket " : "",
               r.url.c_str());
  std::fprintf(out, "  %u threads and %u %s, %s loop", r.threads, r.connections,
               r.ws ? "sockets" : "connections", r.open_loop() ? "open" : "closed");
  if (r.open_loop()) std::fprintf(out, " at %.0f %s/s", r.target_rate, r.ws ? "msg" : "req");
  if (r.ws) std::fprintf(out, ", JSON-RPC %s", r.ws_method.c_str());
  if (r.ws && r.ws_reconnect_every)
    std::fprintf(out, ", reconnect every %lu messages", (unsigned long)r.ws_reconnect_every);
  if (r.users) std::fprintf(out, ", %u users", r.users);
  if (r.users && !r.key.empty()) std::fprintf(out, " (key %s)", r.key.c_str());
  if (r.warmup_s > 0) std::fprintf(out, ", %.1fs warmup", r.warmup_s);
  std::fprintf(out, "\n");
  const HdrHistogram& h = m.latency;
  std::fprintf(out, "  Latency%s: mean %s, max %s\n",
               r.open_loop() ? " (from scheduled send, corrected)" : "",
               fmt_latency(uint64_t(h.mean())).c_str(), fmt_latency(h.max()).c_str());
  std::fprintf(out, "  Latency Distribution\n");
  for (double p : {50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0})
    std::fprintf(out, "  %7.3f%%  %s\n", p, fmt_latency(h.percentile(p)).c_str());
  if (r.open_loop())
    std::fprintf(out, "  Uncorrected (from actual send): p50 %s, p99 %s, max %s\n",
                 fmt_latency(m.uncorrected.percentile(50)).c_str(),
                 fmt_latency(m.uncorrected.percentile(99)).c_str(),
                 fmt_latency(m.uncorrected.max()).c_str());
  if (r.ws)
    std::fprintf(out,
                 "  %lu messages answered in %.2fs (%lu sent, %lu lost with their socket, "
                 "%lu unmatched), %.2f MB read\n",
                 (unsigned long)m.requests, r.duration_s, (unsigned long)m.ws_sent,
                 (unsigned long)m.ws_lost, (unsigned long)m.ws_unmatched,
                 double(m.bytes_read) / 1e6);
  else
    std::fprintf(out, "  %lu requests in %.2fs, %.2f MB read\n", (unsigned long)m.requests,
                 r.duration_s, double(m.bytes_read) / 1e6);
  if (m.unfinished)
    std::fprintf(out, "  %lu %s due but unanswered at the end (in the latency as time waited)\n",
                 (unsigned long)m.unfinished, r.ws ? "messages" : "requests");
  if (r.ws) {
    std::fprintf(out, "  Handshakes: %lu ok, %lu failed (bad accept %lu)\n",
                 (unsigned long)m.ws_handshakes, (unsigned long)r.ws_handshake_failures(),
                 (unsigned long)m.ws_bad_accept);
    std::fprintf(out, "  Close codes from the server:");
    if (m.ws_close_codes.empty()) std::fprintf(out, " none");
    for (const auto& [code, n] : m.ws_close_codes)
      std::fprintf(out, " %u=%lu", unsigned(code), (unsigned long)n);
    std::fprintf(out, "; client closes (1000) %lu\n", (unsigned long)m.ws_client_closes);
  }
  std::fprintf(out, r.ws ? "  Handshake statuses:" : "  Status codes:");
  for (size_t s = 0; s < m.statuses.size(); ++s)
    if (m.statuses[s]) std::fprintf(out, " %zu=%lu", s, (unsigned long)m.statuses[s]);
  std::fprintf(out, "\n");
  if (r.errors_total()) {
    std::fprintf(out, "  Errors:");
    for (size_t k = 0; k < kErrorKinds; ++k)
      std::fprintf(out, " %s %lu", kErrorNames[k], (unsigned long)m.errors[k]);
    std::fprintf(out, "\n");
  }
  if (!r.backend_header.empty())
    std::fprintf(out, "  Stickiness (%s): %lu of %lu users saw more than one backend; backends:",
                 r.backend_header.c_str(), (unsigned long)r.sticky_violations,
                 (unsigned long)r.users_seen);
  if (!r.backend_header.empty()) {
    for (const std::string& b : m.backends) std::fprintf(out, " %s", b.c_str());
    std::fprintf(out, "\n");
  }
  if (r.checkpoints_tracked)
    std::fprintf(out,
                 "  Checkpoints (%s): %lu answers carried one; %lu regressions (older than "
                 "their user had seen) for %lu users, worst %lu slots\n",
                 std::string(kCheckpointHeader).c_str(), (unsigned long)m.regressions.checked,
                 (unsigned long)m.regressions.answers, (unsigned long)r.regression_users,
                 (unsigned long)m.regressions.max_slots);
  std::fprintf(
      out, "  Error rate: %.4f (%lu %s)\n", r.error_rate(), (unsigned long)r.failed_requests(),
      r.ws ? "errors, lost messages and failed handshakes" : "answers outside 2xx and errors");
  if (!r.mix.empty()) {
    const MixResult& x = m.mix;
    std::fprintf(out,
                 "  Mix %s: %lu lookups (%lu requests, %lu answered null, %lu retries after "
                 "null, %lu still null), %lu matches, %lu wrong answers\n",
                 r.mix.c_str(), (unsigned long)x.lookups, (unsigned long)x.lookup_requests,
                 (unsigned long)x.null_answers, (unsigned long)x.retries,
                 (unsigned long)x.null_final, (unsigned long)x.matches,
                 (unsigned long)x.wrong_answers);
    std::fprintf(out, "    lookups (logical, retries included): p50 %s, p99 %s\n",
                 fmt_latency(x.lookup_latency.percentile(50)).c_str(),
                 fmt_latency(x.lookup_latency.percentile(99)).c_str());
    std::fprintf(out, "    matches: p50 %s, p99 %s\n",
                 fmt_latency(x.matches_latency.percentile(50)).c_str(),
                 fmt_latency(x.matches_latency.percentile(99)).c_str());
  }
  std::fprintf(out, r.ws ? "Messages/sec: %10.2f\n" : "Requests/sec: %10.2f\n", r.rate());
  if (r.open_loop()) std::fprintf(out, "Target/sec:   %10.2f\n", r.target_rate);
}

void print_json(const LoadReport& r, FILE* out) {
  const LoadResult& m = r.merged;
  std::fprintf(out, "{\"url\": %s, \"method\": %s, \"mode\": \"%s\", ", json_string(r.url).c_str(),
               json_string(r.method).c_str(), r.open_loop() ? "open" : "closed");
  std::fprintf(out, "\"requests\": %lu, \"duration_s\": %.3f, \"warmup_s\": %.3f, \"rate\": %.2f, ",
               (unsigned long)m.requests, r.duration_s, r.warmup_s, r.rate());
  if (r.open_loop())
    std::fprintf(out, "\"target_rate\": %.2f, ", r.target_rate);
  else
    std::fprintf(out, "\"target_rate\": null, ");
  std::fprintf(out, "\"latency_ms\": ");
  json_latency(out, m.latency);
  std::fprintf(out, ", \"latency_uncorrected_ms\": ");
  json_latency(out, m.uncorrected);
  std::fprintf(out, ", \"unfinished\": %lu, \"statuses\": {", (unsigned long)m.unfinished);
  bool first = true;
  for (size_t s = 0; s < m.statuses.size(); ++s)
    if (m.statuses[s]) {
      std::fprintf(out, "%s\"%zu\": %lu", first ? "" : ", ", s, (unsigned long)m.statuses[s]);
      first = false;
    }
  std::fprintf(out, "}, \"error_rate\": %.6f, \"failed\": %lu", r.error_rate(),
               (unsigned long)r.failed_requests());
  std::fprintf(out, ", \"errors\": {\"total\": %lu", (unsigned long)r.errors_total());
  for (size_t k = 0; k < kErrorKinds; ++k)
    std::fprintf(out, ", \"%s\": %lu", kErrorNames[k], (unsigned long)m.errors[k]);
  std::fprintf(out, "}, \"sticky_violations\": %lu, \"users_seen\": %lu, \"backends\": [",
               (unsigned long)r.sticky_violations, (unsigned long)r.users_seen);
  for (size_t i = 0; i < m.backends.size(); ++i)
    std::fprintf(out, "%s%s", i ? ", " : "", json_string(m.backends[i]).c_str());
  std::fprintf(out, "], \"users\": %u, \"key\": %s, \"connections\": %u, \"threads\": %u, ",
               r.users, r.key.empty() ? "null" : json_string(r.key).c_str(), r.connections,
               r.threads);
  if (r.checkpoints_tracked)
    std::fprintf(out,
                 "\"checkpoint_regressions\": {\"answers\": %lu, \"users\": %lu, "
                 "\"max_slots\": %lu, \"checked\": %lu}, ",
                 (unsigned long)m.regressions.answers, (unsigned long)r.regression_users,
                 (unsigned long)m.regressions.max_slots, (unsigned long)m.regressions.checked);
  else
    std::fprintf(out, "\"checkpoint_regressions\": null, ");
  std::fprintf(out, "\"bytes_read\": %lu, \"per_second\": [", (unsigned long)m.bytes_read);
  const size_t secs = std::min(m.per_second.size(), size_t(std::ceil(r.duration_s)));
  for (size_t i = 0; i < secs; ++i)
    std::fprintf(out, "%s%lu", i ? ", " : "", (unsigned long)m.per_second[i]);
  std::fprintf(out, "]");
  if (!r.mix.empty()) {
    // "requests" above are HTTP requests, retries included; lookups are logical.
    const MixResult& x = m.mix;
    std::fprintf(out,
                 ", \"mix\": {\"name\": %s, \"hashes\": %u, \"zipf_s\": %g, "
                 "\"lookup_share\": %g, \"null_retries\": %u, \"null_retry_ms\": %u, "
                 "\"null_percent\": %lu, \"lookups\": %lu, \"lookup_requests\": %lu, "
                 "\"null_answers\": %lu, \"null_final\": %lu, \"retries\": %lu, \"matches\": %lu, "
                 "\"wrong_answers\": %lu, \"lookup_latency_ms\": ",
                 json_string(r.mix).c_str(), r.mix_params.hashes, r.mix_params.s,
                 r.mix_params.lookup_share, r.mix_params.retries, r.mix_params.retry_ms,
                 (unsigned long)r.null_percent, (unsigned long)x.lookups,
                 (unsigned long)x.lookup_requests, (unsigned long)x.null_answers,
                 (unsigned long)x.null_final, (unsigned long)x.retries, (unsigned long)x.matches,
                 (unsigned long)x.wrong_answers);
    json_latency(out, x.lookup_latency);
    std::fprintf(out, ", \"matches_latency_ms\": ");
    json_latency(out, x.matches_latency);
    std::fprintf(out, "}");
  }
  if (r.ws) {
    // "requests" above are the answered messages, "statuses" the handshakes' answers.
    std::fprintf(out,
                 ", \"ws\": {\"method\": %s, \"reconnect_every\": %lu, \"sent\": %lu, "
                 "\"answered\": %lu, \"lost\": %lu, \"unmatched\": %lu, \"handshakes\": %lu, "
                 "\"handshake_failures\": %lu, \"bad_accept\": %lu, \"client_closes\": %lu, "
                 "\"close_codes\": {",
                 json_string(r.ws_method).c_str(), (unsigned long)r.ws_reconnect_every,
                 (unsigned long)m.ws_sent, (unsigned long)m.requests, (unsigned long)m.ws_lost,
                 (unsigned long)m.ws_unmatched, (unsigned long)m.ws_handshakes,
                 (unsigned long)r.ws_handshake_failures(), (unsigned long)m.ws_bad_accept,
                 (unsigned long)m.ws_client_closes);
    bool first_code = true;
    for (const auto& [code, n] : m.ws_close_codes) {
      std::fprintf(out, "%s\"%u\": %lu", first_code ? "" : ", ", unsigned(code), (unsigned long)n);
      first_code = false;
    }
    std::fprintf(out, "}}");
  }
  std::fprintf(out, "}\n");
}

}  // namespace bench
