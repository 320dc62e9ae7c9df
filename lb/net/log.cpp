#include "lb/net/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <string>

namespace lb::net {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::info)};
std::atomic<int> g_format{static_cast<int>(LogFormat::logfmt)};
std::atomic<int64_t> g_window{0};
std::atomic<int> g_in_window{0};
std::atomic<int> g_suppressed{0};
constexpr int kLimitedPerSecond = 50;

int64_t wall_us() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

bool enabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

// Formats and writes one line; the buffer is the thread's own, so a line costs no
// allocation once warm.
void emit(LogLevel level, std::string_view msg, std::span<const LogField> fields) {
  thread_local std::string line;
  line.clear();
  append_log_line(line, log_format(), wall_us(), log_level_name(level), msg, fields);
  ssize_t w = ::write(2, line.data(), line.size());
  (void)w;
}

// The printf text of a message, cut at 2 KB (a message never needs more).
std::string_view format_msg(char (&buf)[2048], const char* fmt, va_list ap) {
  int m = vsnprintf(buf, sizeof buf, fmt, ap);
  if (m < 0) return {};
  return {buf, std::min<size_t>(static_cast<size_t>(m), sizeof buf - 1)};
}

// The shared limit of log_limited and log_backend_limited: true when this line may go.
bool admit_limited() {
  int64_t now = static_cast<int64_t>(time(nullptr));
  if (g_window.exchange(now) != now) g_in_window = 0;
  if (g_in_window.fetch_add(1) >= kLimitedPerSecond) {
    g_suppressed.fetch_add(1);
    return false;
  }
  int dropped = g_suppressed.exchange(0);
  if (dropped > 0) logf(LogLevel::warn, "%d similar lines suppressed", dropped);
  return true;
}

// A pool's (backend null) or a backend's event.
void vlog_backend(LogLevel level, std::string_view pool, const std::string_view* backend,
                  const char* fmt, va_list ap) {
  char buf[2048];
  std::string_view msg = format_msg(buf, fmt, ap);
  LogField f[] = {{"pool", pool}, {"backend", backend ? *backend : std::string_view()}};
  emit(level, msg, {f, backend ? 2u : 1u});
}

}  // namespace

const char* log_level_name(LogLevel l) {
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

void set_log_level(LogLevel level) { g_level = static_cast<int>(level); }
void set_log_format(LogFormat format) { g_format = static_cast<int>(format); }
LogFormat log_format() { return static_cast<LogFormat>(g_format.load(std::memory_order_relaxed)); }

void logf(LogLevel level, const char* fmt, ...) {
  if (!enabled(level)) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::string_view msg = format_msg(buf, fmt, ap);
  va_end(ap);
  emit(level, msg, {});
}

void log_event(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  if (!enabled(level)) return;
  emit(level, msg, {fields.begin(), fields.size()});
}

void log_backend(LogLevel level, std::string_view pool, std::string_view backend, const char* fmt,
                 ...) {
  if (!enabled(level)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog_backend(level, pool, &backend, fmt, ap);
  va_end(ap);
}

void log_pool(LogLevel level, std::string_view pool, const char* fmt, ...) {
  if (!enabled(level)) return;
  va_list ap;
  va_start(ap, fmt);
  vlog_backend(level, pool, nullptr, fmt, ap);
  va_end(ap);
}

void log_limited(const char* fmt, ...) {
  if (!enabled(LogLevel::warn) || !admit_limited()) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  std::string_view msg = format_msg(buf, fmt, ap);
  va_end(ap);
  emit(LogLevel::warn, msg, {});
}

void log_backend_limited(std::string_view pool, std::string_view backend, const char* fmt, ...) {
  if (!enabled(LogLevel::warn) || !admit_limited()) return;
  va_list ap;
  va_start(ap, fmt);
  vlog_backend(LogLevel::warn, pool, &backend, fmt, ap);
  va_end(ap);
}

void log_pool_limited(std::string_view pool, const char* fmt, ...) {
  if (!enabled(LogLevel::warn) || !admit_limited()) return;
  va_list ap;
  va_start(ap, fmt);
  vlog_backend(LogLevel::warn, pool, nullptr, fmt, ap);
  va_end(ap);
}

void log_event_limited(LogLevel level, std::string_view msg,
                       std::initializer_list<LogField> fields) {
  if (!enabled(level) || !admit_limited()) return;
  emit(level, msg, {fields.begin(), fields.size()});
}

}  // namespace lb::net
