// corral-bench load: flags, the worker threads, the progress line and the report.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/commands.h"
#include "bench/load_client.h"
#include "bench/load_report.h"
#include "bench/load_svg.h"
#include "bench/load_ws.h"
#include "bench/load_ws_frames.h"

namespace bench {

namespace {

struct Url {
  sockaddr_storage addr{};
  std::string host_header;
  std::string path;
  bool ws = false;  // ws://
};

std::optional<double> parse_seconds(const char* s) {
  char* end = nullptr;
  double v = std::strtod(s, &end);
  if (end == s || *end != '\0' || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

std::optional<uint64_t> parse_uint(const char* s) {
  char* end = nullptr;
  if (*s < '0' || *s > '9') return std::nullopt;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (*end != '\0') return std::nullopt;
  return uint64_t(v);
}

// Only loopback is ever a target: this tool makes load, and must not be pointed at
// anybody else's machine by a typo.
bool parse_url(std::string_view u, Url& out, std::string& err) {
  constexpr std::string_view kScheme = "http://", kWs = "ws://";
  if (u.substr(0, kWs.size()) == kWs) {
    out.ws = true;
    u.remove_prefix(kWs.size());
  } else if (u.substr(0, kScheme.size()) == kScheme) {
    u.remove_prefix(kScheme.size());
  } else {
    err = "--url must start with http:// or ws:// (got '" + std::string(u) + "')";
    return false;
  }
  const size_t slash = u.find('/');
  std::string_view authority = u.substr(0, slash);
  out.path = slash == std::string_view::npos ? "/" : std::string(u.substr(slash));
  std::string host;
  std::string_view port_s;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      err = "bad IPv6 literal in --url";
      return false;
    }
    host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        err = "bad --url authority";
        return false;
      }
      port_s = rest.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_s = authority.substr(colon + 1);
  }
  uint64_t port = 80;
  if (!port_s.empty()) {
    auto p = parse_uint(std::string(port_s).c_str());
    if (!p || *p == 0 || *p > 65535) {
      err = "bad port in --url";
      return false;
    }
    port = *p;
  }
  if (host == "localhost") host = "127.0.0.1";  // never resolved: no DNS, no surprise
  in_addr a4{};
  in6_addr a6{};
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    if ((ntohl(a4.s_addr) >> 24) != 127) {
      err = "refusing " + host + ": corral-bench load only targets loopback (127.0.0.0/8 or ::1)";
      return false;
    }
    auto* sin = reinterpret_cast<sockaddr_in*>(&out.addr);
    sin->sin_family = AF_INET;
    sin->sin_addr = a4;
    sin->sin_port = htons(uint16_t(port));
    out.host_header = host + ":" + std::to_string(port);
  } else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&a6)) {
      err = "refusing " + host + ": corral-bench load only targets loopback (127.0.0.0/8 or ::1)";
      return false;
    }
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out.addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = a6;
    sin6->sin6_port = htons(uint16_t(port));
    out.host_header = "[" + host + "]:" + std::to_string(port);
  } else {
    err = "refusing host '" + host +
          "': corral-bench load only targets loopback literals (127.x.x.x, [::1], localhost)";
    return false;
  }
  return true;
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "corral-bench load: %s\n", msg.c_str());
  return 2;
}

}  // namespace

int run_load(int argc, char** argv) {
  std::string url_s;
  double duration = 10, warmup = 0, rate = 0, timeout = 5;
  uint64_t connections = 10, threads = 1, users = 0;
  std::string method = "GET", key_s, backend_header, svg;
  std::vector<std::string> headers;
  bool json = false, ws = false;
  std::string ws_method = "queryNetwork/tip", ws_params;
  uint64_t ws_reconnect_every = 0, ws_backoff_ms = 50;
  std::optional<uint64_t> max_regressions;  // absent: report only
  std::optional<double> max_error_rate;     // absent: report only
  int progress = -1;                        // -1: if stderr is a TTY
  std::string mix_s;                        // --mix: "lucid"
  LucidMix mix;
  uint64_t null_percent = 5;
  bool mix_knob = false;  // a mix flag was given: it needs --mix
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") {
      help_load(stdout);
      return 0;
    }
    if (a == "--json" || a == "--ws") {
      (a == "--ws" ? ws : json) = true;
      continue;
    }
    if (a == "--progress" || a == "--no-progress") {
      progress = a == "--progress";
      continue;
    }
    if (i + 1 >= argc) return usage_error(std::string(a) + " needs a value (or is unknown)");
    const char* v = argv[++i];
    auto seconds = [&](double& out, bool positive) {
      auto s = parse_seconds(v);
      if (!s || (positive && *s <= 0)) return false;
      out = *s;
      return true;
    };
    auto count = [&](uint64_t& out, uint64_t lo, uint64_t hi) {
      auto n = parse_uint(v);
      if (!n || *n < lo || *n > hi) return false;
      out = *n;
      return true;
    };
    bool ok = true;
    if (a == "--url")
      url_s = v;
    else if (a == "--duration")
      ok = seconds(duration, true);
    else if (a == "--warmup")
      ok = seconds(warmup, false);
    else if (a == "--rate")
      ok = seconds(rate, true);
    else if (a == "--timeout")
      ok = seconds(timeout, true);
    else if (a == "--connections")
      ok = count(connections, 1, 100000);
    else if (a == "--threads")
      ok = count(threads, 1, 256);
    else if (a == "--users")
      ok = count(users, 0, 100'000'000);
    else if (a == "--key")
      key_s = v;
    else if (a == "--backend-header")
      backend_header = v;
    else if (a == "--method")
      method = v;
    else if (a == "--svg")
      svg = v;
    else if (a == "--ws-method")
      ws_method = v;
    else if (a == "--ws-params")
      ws_params = v;
    else if (a == "--ws-reconnect-every")
      ok = count(ws_reconnect_every, 0, uint64_t{1} << 40);
    else if (a == "--ws-backoff")
      ok = count(ws_backoff_ms, 0, 60'000);
    else if (a == "--max-regressions")
      ok = count(max_regressions.emplace(), 0, UINT64_MAX);
    else if (a == "--max-error-rate")
      ok = seconds(max_error_rate.emplace(), false) && *max_error_rate <= 1.0;
    else if (a == "--mix")
      mix_s = v;
    else if (a == "--hashes" || a == "--null-retries" || a == "--null-retry-ms" ||
             a == "--zipf-s" || a == "--null-percent") {
      mix_knob = true;
      uint64_t n = 0;
      if (a == "--zipf-s") {
        ok = seconds(mix.s, false) && mix.s <= 10;
      } else if (a == "--hashes") {
        ok = count(n, 1, 10'000'000);
        mix.hashes = uint32_t(n);
      } else if (a == "--null-retries") {
        ok = count(n, 1, 1000);
        mix.retries = uint32_t(n);
      } else if (a == "--null-retry-ms") {
        ok = count(n, 0, 60'000);
        mix.retry_ms = uint32_t(n);
      } else {
        ok = count(null_percent, 0, 100);
      }
    } else if (a == "--header") {
      std::string h = v;
      if (h.find(':') == std::string::npos || h.find_first_of("\r\n") != std::string::npos)
        return usage_error("--header wants \"Name: value\"");
      headers.push_back(h);
    } else
      return usage_error("unknown option " + std::string(a));
    if (!ok) return usage_error("bad value for " + std::string(a) + ": '" + v + "'");
  }
  if (url_s.empty()) return usage_error("--url is required (see corral-bench help load)");
  Url url;
  std::string err;
  if (!parse_url(url_s, url, err)) return usage_error(err);
  if (method.empty() || method.find_first_of(" \r\n") != std::string::npos)
    return usage_error("bad --method");
  ws = ws || url.ws;
  if (ws) {
    // One socket per user: the users are the connections.
    if (users == 0) users = connections;
    connections = users;
    if (users > 1'000'000) return usage_error("--ws: at most 1000000 users (sockets)");
    if (ws_method.empty() || !json_plain(ws_method)) return usage_error("bad --ws-method");
    if (ws_params.find_first_of("\r\n") != std::string::npos || ws_params.size() > 65536)
      return usage_error("bad --ws-params");
    if (backend_header.empty()) backend_header = "X-Backend";
    method = "GET";
    // A socket per user can be many descriptors: take the hard limit.
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  if (!mix_s.empty()) {
    if (mix_s != "lucid") return usage_error("--mix: the only mix is lucid");
    if (ws) return usage_error("--mix is HTTP only (not with --ws or a ws:// URL)");
    if (method != "GET") return usage_error("--mix sends GET only (not --method " + method + ")");
    if (key_s == "address") return usage_error("--mix makes its own addresses: not --key address");
  } else if (mix_knob) {
    return usage_error(
        "--hashes, --zipf-s, --null-retries, --null-retry-ms and --null-percent "
        "need --mix lucid");
  }
  if (threads > connections) return usage_error("--threads must not exceed --connections");

  LoadSpec base;
  base.addr = url.addr;
  base.host_header = url.host_header;
  base.path = url.path;
  base.method = method;
  base.headers = headers;
  base.users = uint32_t(users);
  base.backend_header = backend_header;
  base.timeout_ns = uint64_t(timeout * 1e9);
  base.ws = ws;
  base.ws_method = ws_method;
  base.ws_params = ws_params;
  base.ws_reconnect_every = ws_reconnect_every;
  base.ws_backoff_ms = ws_backoff_ms;
  if (!mix_s.empty()) base.mix = mix;
  base.null_percent = null_percent;
  if (!key_s.empty()) {
    auto named = [&](std::string_view prefix, KeyKind k) {
      if (key_s.rfind(prefix, 0) != 0 || key_s.size() == prefix.size()) return false;
      base.key = k;
      base.key_name = key_s.substr(prefix.size());
      return true;
    };
    if (key_s == "path")
      base.key = KeyKind::path;
    else if (key_s == "address")
      base.key = KeyKind::address;
    else if (!named("header:", KeyKind::header) && !named("cookie:", KeyKind::cookie))
      return usage_error("--key wants header:NAME, cookie:NAME, path or address");
    if (base.key_name.find_first_of(" :\r\n;=") != std::string::npos)
      return usage_error("bad name in --key");
    if (users == 0) return usage_error("--key needs --users N (N >= 1)");
  }
  // One u64 per user, shared by the workers; a WebSocket answer has no checkpoint header.
  std::unique_ptr<UserCheckpoints> checkpoints;
  if (users > 0 && !ws) {
    checkpoints = std::make_unique<UserCheckpoints>(uint32_t(users));
    base.checkpoints = checkpoints.get();
  } else if (max_regressions) {
    return usage_error("--max-regressions needs --users N over HTTP (not --ws)");
  }
  if (progress < 0) progress = isatty(STDERR_FILENO) ? 1 : 0;
  std::signal(SIGPIPE, SIG_IGN);

  // Every worker shares one clock: the schedule starts shortly after the threads do.
  const uint32_t T = uint32_t(threads);
  const uint64_t start = uv_hrtime() + 20'000'000;
  std::vector<LoadSpec> specs(T, base);
  std::vector<LoadResult> results(T);
  std::vector<std::unique_ptr<LoadLive>> lives;
  for (uint32_t t = 0; t < T; ++t) {
    LoadSpec& s = specs[t];
    s.thread_index = t;
    s.thread_count = T;
    s.connections = uint32_t(connections / T + (t < connections % T ? 1 : 0));
    s.rate = rate * double(s.connections) / double(connections);
    s.start_ns = start;
    s.measure_start_ns = start + uint64_t(warmup * 1e9);
    s.end_ns = s.measure_start_ns + uint64_t(duration * 1e9);
    s.live = progress == 1;
    lives.push_back(std::make_unique<LoadLive>());
  }
  std::vector<std::thread> workers;
  for (uint32_t t = 0; t < T; ++t)
    workers.emplace_back([&, t] {
      if (ws)
        run_ws_worker(specs[t], results[t], *lives[t]);
      else
        run_load_worker(specs[t], results[t], *lives[t]);
    });

  if (progress == 1) {
    // Once a second: elapsed, achieved rate over the last second, p99 so far, errors.
    uint64_t last = 0;
    const uint64_t end = specs[0].end_ns;
    for (int sec = 1;; ++sec) {
      const uint64_t wake = start + uint64_t(sec) * 1'000'000'000ULL;
      if (wake >= end) break;
      std::this_thread::sleep_for(std::chrono::nanoseconds(wake - uv_hrtime()));
      uint64_t req = 0, errs = 0;
      HdrHistogram h;
      for (auto& l : lives) {
        req += l->requests.load(std::memory_order_relaxed);
        errs += l->errors.load(std::memory_order_relaxed);
        std::lock_guard<std::mutex> lock(l->mu);
        h.merge(l->snapshot);
      }
      const bool warm = double(sec) <= warmup;
      std::fprintf(stderr, "\r[%4ds%s] %9.0f req/s  p99 %8.2f ms  errors %lu   ", sec,
                   warm ? " warmup" : "", double(req - last), double(h.percentile(99)) / 1000.0,
                   (unsigned long)errs);
      std::fflush(stderr);
      last = req;
    }
  }
  for (auto& w : workers) w.join();
  if (progress == 1) std::fprintf(stderr, "\n");

  LoadReport report;
  report.url = url_s;
  report.method = method;
  report.connections = uint32_t(connections);
  report.threads = T;
  report.users = uint32_t(users);
  report.key = key_s;
  report.backend_header = backend_header;
  report.target_rate = rate;
  report.duration_s = duration;
  report.warmup_s = warmup;
  report.ws = ws;
  report.ws_method = ws_method;
  report.ws_reconnect_every = ws_reconnect_every;
  report.mix = mix_s;
  report.mix_params = mix;
  report.null_percent = null_percent;
  for (const LoadResult& r : results) merge_result(report.merged, r);
  finish_report(report);
  report.checkpoints_tracked = checkpoints != nullptr;
  if (checkpoints) report.regression_users = checkpoints->users_affected();
  if (json)
    print_json(report, stdout);
  else
    print_text(report, stdout);
  std::fflush(stdout);
  if (!svg.empty() && !write_svg(report, svg)) {
    std::fprintf(stderr, "corral-bench load: cannot write %s: %s\n", svg.c_str(),
                 std::strerror(errno));
    return 1;
  }
  // A run in which nothing answered measured nothing but the failure (a closed port, a wrong
  // host): scripts and CI must see it fail, not read a report of zeros as a result.
  if (report.merged.requests == 0) {
    std::string why;
    for (size_t k = 0; k < kErrorKinds; ++k)
      why += std::string(k ? ", " : "") + kErrorNames[k] + " " +
             std::to_string(report.merged.errors[k]);
    std::fprintf(stderr, "corral-bench load: no %s got an answer from %s (errors: %s)\n",
                 ws ? "message" : "request", url_s.c_str(), why.c_str());
    return 1;
  }
  if (max_regressions && report.merged.regressions.answers > *max_regressions) {
    std::fprintf(
        stderr,
        "corral-bench load: %lu checkpoint regressions (%lu users, worst %lu slots) "
        "exceed --max-regressions %lu\n",
        (unsigned long)report.merged.regressions.answers, (unsigned long)report.regression_users,
        (unsigned long)report.merged.regressions.max_slots, (unsigned long)*max_regressions);
    return 3;
  }
  if (max_error_rate && report.error_rate() > *max_error_rate) {
    std::fprintf(stderr,
                 "corral-bench load: error rate %.4f (%lu failed) exceeds --max-error-rate %g\n",
                 report.error_rate(), (unsigned long)report.failed_requests(), *max_error_rate);
    return 3;
  }
  return 0;
}

}  // namespace bench
