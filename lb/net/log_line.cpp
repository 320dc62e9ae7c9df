#include "lb/net/log_line.h"

#include <ctime>

namespace lb::net {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence at s[i] (1..4), or 0 when the byte starts none
// (overlong forms, surrogates and values past U+10FFFF are refused, as RFC 3629 says).
size_t utf8_length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  if (n == 2 && c < 0xc2) return 0;                                       // overlong
  if (n == 3 && c == 0xe0 && b(i + 1) < 0xa0) return 0;                   // overlong
  if (n == 3 && c == 0xed && b(i + 1) >= 0xa0) return 0;                  // surrogate
  if (n == 4 && c == 0xf0 && b(i + 1) < 0x90) return 0;                   // overlong
  if (n == 4 && (c > 0xf4 || (c == 0xf4 && b(i + 1) >= 0x90))) return 0;  // > U+10FFFF
  return n;
}

// The escapes both formats share; false for a byte that needs none.
bool append_common_escape(std::string& out, unsigned char c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return true;
    case '\\':
      out += "\\\\";
      return true;
    case '\n':
      out += "\\n";
      return true;
    case '\r':
      out += "\\r";
      return true;
    case '\t':
      out += "\\t";
      return true;
    default:
      break;
  }
  if (c < 0x20 || c == 0x7f) {
    out += "\\u00";
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
    return true;
  }
  return false;
}

bool plain_word(std::string_view v) {
  if (v.empty()) return false;
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c <= 0x20 || c == 0x7f || c == '"' || c == '=' || c == '\\') return false;
    if (c >= 0x80) {
      size_t n = utf8_length(v, i);
      if (n == 0) return false;
      i += n - 1;
    }
  }
  return true;
}

}  // namespace

void append_log_time(std::string& out, int64_t unix_us) {
  time_t secs = static_cast<time_t>(unix_us / 1'000'000);
  tm t;
  gmtime_r(&secs, &t);
  char buf[40];
  int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                   t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                   static_cast<int>((unix_us / 1000) % 1000));
  out.append(buf, static_cast<size_t>(n));
}

void append_logfmt_value(std::string& out, std::string_view v) {
  if (plain_word(v)) {
    out += v;
    return;
  }
  out += '"';
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x80) {
      size_t n = utf8_length(v, i);
      if (n == 0) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
      } else {
        out.append(v.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    if (!append_common_escape(out, c)) out += static_cast<char>(c);
  }
  out += '"';
}

void append_json_string(std::string& out, std::string_view v) {
  out += '"';
  for (size_t i = 0; i < v.size(); ++i) {
    auto c = static_cast<unsigned char>(v[i]);
    if (c >= 0x80) {
      size_t n = utf8_length(v, i);
      if (n == 0) {
        out += "\\ufffd";
      } else {
        out.append(v.substr(i, n));
        i += n - 1;
      }
      continue;
    }
    if (!append_common_escape(out, c)) out += static_cast<char>(c);
  }
  out += '"';
}

void append_log_line(std::string& out, LogFormat format, int64_t unix_us, std::string_view level,
                     std::string_view msg, std::span<const LogField> fields) {
  std::string time;
  append_log_time(time, unix_us);
  if (format == LogFormat::json) {
    out += "{\"time\":\"";
    out += time;
    out += "\",\"level\":";
    append_json_string(out, level);
    if (!msg.empty()) {
      out += ",\"msg\":";
      append_json_string(out, msg);
    }
    for (const LogField& f : fields) {
      out += ',';
      append_json_string(out, f.key);
      out += ':';
      if (f.number && !f.value.empty())
        out += f.value;
      else
        append_json_string(out, f.value);
    }
    out += "}\n";
    return;
  }
  out += "time=";
  out += time;
  out += " level=";
  append_logfmt_value(out, level);
  if (!msg.empty()) {
    out += " msg=";
    append_logfmt_value(out, msg);
  }
  for (const LogField& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    append_logfmt_value(out, f.value);
  }
  out += '\n';
}

}  // namespace lb::net
