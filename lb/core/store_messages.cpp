#include "lb/core/store_messages.h"

#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <vector>

namespace lb {
namespace {

// Splits on '|' into exactly n fields; false otherwise.
bool split(std::string_view s, size_t n, std::vector<std::string_view>& out) {
  out.clear();
  for (;;) {
    size_t bar = s.find('|');
    out.push_back(s.substr(0, bar));
    if (bar == std::string_view::npos) break;
    s.remove_prefix(bar + 1);
  }
  return out.size() == n;
}

template <class T>
bool parse_dec(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

bool parse_hex64(std::string_view s, uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return s.size() == 16 && ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

std::optional<SessionKey> parse_key_hex(std::string_view hex) {
  SessionKey k;
  if (hex.size() != 32 || !parse_hex64(hex.substr(0, 16), k.hi) ||
      !parse_hex64(hex.substr(16), k.lo))
    return std::nullopt;
  return k;
}

std::string encode_pin_moved(const PinMoved& m) {
  char hex[33];
  snprintf(hex, sizeof hex, "%016" PRIx64 "%016" PRIx64, m.key.hi, m.key.lo);
  std::string out(hex, 32);
  out.append("|").append(m.from).append("|").append(m.to).append("|").append(m.instance);
  return out;
}

std::optional<PinMoved> decode_pin_moved(std::string_view msg) {
  static thread_local std::vector<std::string_view> f;
  if (!split(msg, 4, f) || f[2].empty() || f[3].empty()) return std::nullopt;
  std::optional<SessionKey> key = parse_key_hex(f[0]);
  if (!key) return std::nullopt;
  return PinMoved{*key, std::string(f[1]), std::string(f[2]), std::string(f[3])};
}

std::string encode_quota_cooled(const QuotaCooled& m) {
  std::string out = m.pool;
  out.append("|").append(std::to_string(m.status)).append("|");
  out.append(std::to_string(m.until_unix_ms)).append("|").append(m.instance);
  return out;
}

std::optional<QuotaCooled> decode_quota_cooled(std::string_view msg) {
  static thread_local std::vector<std::string_view> f;
  QuotaCooled q;
  if (!split(msg, 4, f) || f[0].empty() || f[3].empty() || !parse_dec(f[1], q.status) ||
      !parse_dec(f[2], q.until_unix_ms) || q.status < 100 || q.status > 599)
    return std::nullopt;
  q.pool = f[0];
  q.instance = f[3];
  return q;
}

}  // namespace lb
