#include "config/duration.h"

#include <limits>

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

}  // namespace config
