#pragma once
// Event lines on stderr, one event per line with a level (README "Logs"): logfmt by
// default (`time=2026-11-27T20:01:02.123Z level=info msg="..." key=value`), JSON lines
// with log.format: json (lb/net/log_line). Each line is a single write(2), so lines from
// several threads never interleave. Secrets are never passed here (callers log names,
// not values).
#include <cstdarg>
#include <initializer_list>
#include <string_view>

#include "lb/net/log_line.h"

namespace lb::net {

enum class LogLevel { debug, info, warn, error };

void set_log_level(LogLevel level);
void set_log_format(LogFormat format);
LogFormat log_format();
const char* log_level_name(LogLevel level);

// A line whose msg is the printf-formatted text.
void logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// A line with a fixed msg and fields (the values are escaped as the format needs).
void log_event(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields);

// An event of one backend: msg is the printf-formatted text, and the line always carries
// pool= and backend= fields, in both formats.
void log_backend(LogLevel level, std::string_view pool, std::string_view backend, const char* fmt,
                 ...) __attribute__((format(printf, 4, 5)));

// An event of one pool as a whole (quota, cool-down): with a pool= field.
void log_pool(LogLevel level, std::string_view pool, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

// For bad-input lines a client can trigger at will: at most 50 lines a second are
// written; the rest are counted and reported in the next line that gets through.
void log_limited(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// The same limit (shared), for a backend's or a pool's event: with pool= and backend=
// fields, or pool= alone.
void log_backend_limited(std::string_view pool, std::string_view backend, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_pool_limited(std::string_view pool, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));
// log_event under the same limit, for events that can happen once per request (a user's
// move).
void log_event_limited(LogLevel level, std::string_view msg,
                       std::initializer_list<LogField> fields);

}  // namespace lb::net
