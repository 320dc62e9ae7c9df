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

namespace {

bool is_unit(std::string_view u) { return u == "KB" || u == "MB" || u == "GB"; }

}  // namespace

// The common slips first: "10 MB", "16kb", "64KiB", "1.5MB".
std::string size_problem(std::string_view text) {
  if (parse_size_bytes(text)) return "";
  if (text.empty()) return "the value is empty";
  if (text.front() == '-') return "a size cannot be negative";
  if (text.front() == '+') return "no sign is allowed";
  size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '_')) ++i;
  if (i == 0) return "it must start with a whole number";
  std::string_view rest = text.substr(i);
  std::string_view count = text.substr(0, i);
  if (!text::parse_uint(count) && count.find('_') != std::string_view::npos)
    return "'_' may only separate digits";
  if (rest.empty()) return "the value is too large";
  if (rest.front() == '.' || rest.front() == ',') return "whole numbers only (1536KB, not 1.5MB)";
  if (rest.front() == ' ' || rest.front() == '\t')
    return "no space is allowed between the number and the unit";
  if (is_unit(rest)) return "the value is too large";
  if (is_unit(text::upper(std::string(rest)))) return "units are upper-case: KB, MB, GB";
  if (text::iequals(rest, "KiB") || text::iequals(rest, "MiB") || text::iequals(rest, "GiB"))
    return "write KB, MB or GB (corral's units are already powers of 1024)";
  if (text::iequals(rest, "B") || text::iequals(rest, "bytes"))
    return "plain bytes take no unit (16384, not 16384B)";
  return "unknown unit " + text::quoted(rest);
}

}  // namespace config
