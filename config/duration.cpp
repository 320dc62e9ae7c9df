#include "config/duration.h"

#include <limits>

#include "config/text.h"

namespace config {

std::optional<uint64_t> parse_duration_ms(std::string_view text) {
  size_t i = 0;
  uint64_t count = 0;
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (count > (kMax - digit) / 10) return std::nullopt;
    count = count * 10 + digit;
    ++i;
  }
  if (i == 0) return std::nullopt;  // no digits: "-1s", "s", "", " 1s"
  std::string_view unit = text.substr(i);
  uint64_t scale = 0;
  if (unit == "ms")
    scale = 1;
  else if (unit == "s")
    scale = 1000;
  else if (unit == "m")
    scale = 60 * 1000;
  else if (unit == "h")
    scale = 3600 * 1000;
  else if (unit == "d")
    scale = 24 * 3600 * 1000;
  else
    return std::nullopt;  // bare number, unknown or misspelled unit, trailing junk
  if (count > kMax / scale) return std::nullopt;
  return count * scale;
}

namespace {

bool is_unit(std::string_view u) {
  return u == "ms" || u == "s" || u == "m" || u == "h" || u == "d";
}

}  // namespace

// The common slips first: operators write "5 mins", "1.5s", "30" or "1h30m".
std::string duration_problem(std::string_view text) {
  if (parse_duration_ms(text)) return "";
  if (text.empty()) return "the value is empty";
  if (text.front() == '-') return "a duration cannot be negative";
  if (text.front() == '+') return "no sign is allowed";
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return "it must start with a whole number";
  std::string_view rest = text.substr(i);
  if (rest.empty()) return "the unit is missing (a bare number is not a duration)";
  if (rest.front() == '.' || rest.front() == ',') return "whole numbers only (1500ms, not 1.5s)";
  if (rest.front() == ' ' || rest.front() == '\t')
    return "no space is allowed between the number and the unit";
  if (is_unit(rest)) return "the value is too large";
  size_t u = 0;
  while (u < rest.size() && !(rest[u] >= '0' && rest[u] <= '9')) ++u;
  if (u < rest.size() && is_unit(rest.substr(0, u))) return "one unit only (90m, not 1h30m)";
  return "unknown unit " + text::quoted(rest);
}

}  // namespace config
