#pragma once
// One line per event on stderr: "2026-11-24T21:47:14.123Z level message". Each line is a
// single write(2), so lines from several threads never interleave. Secrets are never
// passed here (callers log names, not values).
#include <cstdarg>

namespace lb::net {

enum class LogLevel { debug, info, warn, error };

void set_log_level(LogLevel level);
void logf(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// For bad-input lines a client can trigger at will: at most `per_second` lines a second
// are written; the rest are counted and reported in the next line that gets through.
void log_limited(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace lb::net
