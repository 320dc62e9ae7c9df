#include "bench/sim/json_scan.h"

#include <cstdint>

#include "lb/core/flat_json.h"

namespace bench::json {

namespace {

constexpr size_t npos = std::string_view::npos;

size_t skip_ws(std::string_view s, size_t pos) {
  while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
    ++pos;
  return pos;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

size_t skip_string(std::string_view s, size_t pos) {
  if (pos >= s.size() || s[pos] != '"') return npos;
  for (++pos; pos < s.size(); ++pos) {
    const unsigned char c = static_cast<unsigned char>(s[pos]);
    if (c == '"') return pos + 1;
    if (c < 0x20) return npos;
    if (c != '\\') continue;
    if (++pos >= s.size()) return npos;
    switch (s[pos]) {
      case '"':
      case '\\':
      case '/':
      case 'b':
      case 'f':
      case 'n':
      case 'r':
      case 't':
        break;
      case 'u':
        if (pos + 4 >= s.size()) return npos;
        for (int i = 1; i <= 4; ++i)
          if (!is_hex(s[pos + i])) return npos;
        pos += 4;
        break;
      default:
        return npos;
    }
  }
  return npos;
}

size_t skip_number(std::string_view s, size_t pos) {
  auto digits = [&](size_t p) {
    size_t q = p;
    while (q < s.size() && s[q] >= '0' && s[q] <= '9') ++q;
    return q;
  };
  if (pos < s.size() && s[pos] == '-') ++pos;
  if (pos >= s.size()) return npos;
  if (s[pos] == '0') {
    ++pos;
  } else {
    const size_t e = digits(pos);
    if (e == pos) return npos;
    pos = e;
  }
  if (pos < s.size() && s[pos] == '.') {
    const size_t e = digits(pos + 1);
    if (e == pos + 1) return npos;
    pos = e;
  }
  if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
    ++pos;
    if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) ++pos;
    const size_t e = digits(pos);
    if (e == pos) return npos;
    pos = e;
  }
  return pos;
}

// Walks a container's items, calling `item(name_begin, name_end, value_begin, value_end)`
// (names only for objects); returns the end of the container or npos.
template <typename F>
size_t walk(std::string_view s, size_t pos, int depth, F&& item) {
  const bool object = s[pos] == '{';
  const char close = object ? '}' : ']';
  pos = skip_ws(s, pos + 1);
  if (pos < s.size() && s[pos] == close) return pos + 1;
  while (true) {
    size_t nb = 0, ne = 0;
    if (object) {
      nb = pos;
      ne = skip_string(s, pos);
      if (ne == npos) return npos;
      pos = skip_ws(s, ne);
      if (pos >= s.size() || s[pos] != ':') return npos;
      ++pos;
    }
    const size_t vb = skip_ws(s, pos);
    const size_t ve = skip_value(s, vb, depth + 1);
    if (ve == npos) return npos;
    item(nb, ne, vb, ve);
    pos = skip_ws(s, ve);
    if (pos >= s.size()) return npos;
    if (s[pos] == close) return pos + 1;
    if (s[pos] != ',') return npos;
    pos = skip_ws(s, pos + 1);
  }
}

}  // namespace

size_t skip_value(std::string_view s, size_t pos, int depth) {
  if (depth > kMaxDepth) return npos;
  pos = skip_ws(s, pos);
  if (pos >= s.size()) return npos;
  const char c = s[pos];
  if (c == '{' || c == '[') return walk(s, pos, depth, [](size_t, size_t, size_t, size_t) {});
  if (c == '"') return skip_string(s, pos);
  for (std::string_view word : {"true", "false", "null"})
    if (s.substr(pos, word.size()) == word) return pos + word.size();
  return skip_number(s, pos);
}

bool valid(std::string_view text) {
  const size_t end = skip_value(text, 0);
  return end != npos && skip_ws(text, end) == text.size();
}

std::optional<std::vector<std::pair<std::string, std::string_view>>> object_members(
    std::string_view text) {
  const size_t b = skip_ws(text, 0);
  if (b >= text.size() || text[b] != '{') return std::nullopt;
  std::vector<std::pair<std::string, std::string_view>> out;
  bool names_ok = true;
  const size_t end = walk(text, b, 0, [&](size_t nb, size_t ne, size_t vb, size_t ve) {
    std::optional<std::string> name = string_value(text.substr(nb, ne - nb));
    if (!name) names_ok = false;
    out.emplace_back(name.value_or(""), text.substr(vb, ve - vb));
  });
  if (end == npos || !names_ok || skip_ws(text, end) != text.size()) return std::nullopt;
  return out;
}

std::optional<std::vector<std::string_view>> array_items(std::string_view text) {
  const size_t b = skip_ws(text, 0);
  if (b >= text.size() || text[b] != '[') return std::nullopt;
  std::vector<std::string_view> out;
  const size_t end = walk(text, b, 0, [&](size_t, size_t, size_t vb, size_t ve) {
    out.push_back(text.substr(vb, ve - vb));
  });
  if (end == npos || skip_ws(text, end) != text.size()) return std::nullopt;
  return out;
}

std::optional<std::string> string_value(std::string_view raw) {
  if (skip_string(raw, 0) != raw.size()) return std::nullopt;
  return lb::json_unescape(raw.substr(1, raw.size() - 2));  // escapes checked just above
}

std::optional<uint64_t> count_value(std::string_view raw) {
  if (raw.empty() || raw.size() > 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : raw) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (raw.size() > 1 && raw[0] == '0') return std::nullopt;
  if (v > (uint64_t{1} << 53)) return std::nullopt;
  return v;
}

std::string_view member(const std::vector<std::pair<std::string, std::string_view>>& members,
                        std::string_view name) {
  std::string_view found;
  for (const auto& [k, v] : members)
    if (k == name) found = v;  // the last one wins, as in most JSON readers
  return found;
}

}  // namespace bench::json
