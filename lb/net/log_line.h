#pragma once
// One log line in one of the two formats corral writes (README "Logs"): logfmt
// (`time=... level=warn msg="backend down" pool=kupo backend=kupo-2`) or a JSON object
// with the same keys. Pure: the caller supplies the time, so the bytes are testable.
// Event lines (lb/net/log) and access lines (lb/net/access_log) are both built here.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lb::net {

enum class LogFormat : uint8_t { logfmt, json };

// One key and its value. `number`: the value is a decimal number, written bare in JSON
// (logfmt never quotes one anyway). Keys are fixed identifiers chosen by corral.
struct LogField {
  std::string_view key;
  std::string_view value;
  bool number = false;
};

// Appends "2026-11-27T20:01:02.123Z" (milliseconds, UTC) for a Unix time in µs.
void append_log_time(std::string& out, int64_t unix_us);

// Appends a logfmt value: bare when it is a plain word, else in double quotes, escaping
// quote, backslash, newline, CR and tab as in C, other control characters as \u00XX and a
// byte that is not UTF-8 as \xNN.
void append_logfmt_value(std::string& out, std::string_view v);

// Appends a JSON string literal (quotes included); a byte that is not UTF-8 becomes
// U+FFFD, so the line is always valid JSON.
void append_json_string(std::string& out, std::string_view v);

// Appends one whole line ending in '\n': time, level, msg (when not empty), then `fields`
// in order. Newlines inside values are escaped, so the line is always one line.
void append_log_line(std::string& out, LogFormat format, int64_t unix_us, std::string_view level,
                     std::string_view msg, std::span<const LogField> fields);

}  // namespace lb::net
