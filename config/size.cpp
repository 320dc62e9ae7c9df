#include "config/size.h"

#include <limits>

#include "config/text.h"

namespace config {

std::optional<uint64_t> parse_size_bytes(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '_')) ++i;
  std::optional<uint64_t> count = text::parse_uint(text.substr(0, i));
  if (!count) return std::nullopt;
  std::string_view unit = text.substr(i);
  uint64_t scale = 0;
  if (unit.empty())
    scale = 1;
  else if (unit == "KB")
    scale = uint64_t{1} << 10;
  else if (unit == "MB")
    scale = uint64_t{1} << 20;
  else if (unit == "GB")
    scale = uint64_t{1} << 30;
  else
    return std::nullopt;
  if (*count > std::numeric_limits<uint64_t>::max() / scale) return std::nullopt;
  return *count * scale;
}

}  // namespace config
