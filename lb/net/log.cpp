#include "lb/net/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>

namespace lb::net {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<int64_t> g_window{0};
std::atomic<int> g_in_window{0};
std::atomic<int> g_suppressed{0};
constexpr int kLimitedPerSecond = 50;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "?";
}

void vlog(LogLevel level, const char* fmt, va_list ap) {
  char line[2048];
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ", t.tm_year + 1900,
                   t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000,
                   level_name(level));
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : std::min<size_t>(m, sizeof line - n - 2));
  line[len++] = '\n';
  ssize_t w = ::write(2, line, len);
  (void)w;
}
}  // namespace

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }

void logf(LogLevel level, const char* fmt, ...) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog(level, fmt, ap);
  va_end(ap);
}

void log_limited(const char* fmt, ...) {
  int64_t now = static_cast<int64_t>(time(nullptr));
  if (g_window.exchange(now) != now) g_in_window = 0;
  if (g_in_window.fetch_add(1) >= kLimitedPerSecond) {
    g_suppressed.fetch_add(1);
    return;
  }
  int dropped = g_suppressed.exchange(0);
  if (dropped > 0) logf(LogLevel::warn, "%d similar lines suppressed", dropped);
  va_list ap;
  va_start(ap, fmt);
  vlog(LogLevel::warn, fmt, ap);
  va_end(ap);
}

}  // namespace lb::net
